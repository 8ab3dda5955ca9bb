package sdes

// This package has no dependencies on the rest of convergo: it is a leaf
// parser. The file exists to keep the house layout.
