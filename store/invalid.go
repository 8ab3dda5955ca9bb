package store

import (
	"fmt"
	"strconv"
)

func wrapInvalid(msg string) error { return fmt.Errorf("%w: %s", ErrInvalid, msg) }

func itoa(n int) string { return strconv.Itoa(n) }
