package search

import "errors"

// ErrQuery is wrapped by ParseQuery errors: the query cannot be searched.
var ErrQuery = errors.New("search: bad query")
