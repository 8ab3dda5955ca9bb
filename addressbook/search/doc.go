// Package search is the in-memory contact index behind "smart search" and
// caller-ID lookup: name prefixes and substrings, typo tolerance
// (Levenshtein distance 1 for 4–7 letters, 2 from 8), Chinese names by full
// pinyin and by initials (go-pinyin, heteronyms included), phone numbers in
// any format (digit keys of the E.164 form, the national significant
// number and the digits as typed), emails, organisations and tags.
//
// Results are ranked by match tier (exact > prefix > substring > fuzzy),
// then starred and frequent contacts first, then by score and name.
//
// An Index is a plain data structure that does no I/O and starts no
// goroutines. Search, LookupNumber and Len only read it and may run
// concurrently with each other; Put, Delete, SetFrequency and Commit need
// exclusive access. The addressbook package owns one per cached user and
// guards it with a read-write lock. Search scans the index in chunks of
// 256 contacts whose text, digit keys and name words sit in contiguous
// strings and arrays; Commit rebuilds the chunks that changed.
//
// ParseQuery parses untrusted input and has a fuzz target.
package search
