package main

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// userCLI runs "convergo user …" against the configured store, so that an
// operator can bootstrap the first admin without HTTP. With the embedded
// store the server must be stopped first (bbolt allows one process).
func userCLI(ctx context.Context, args []string, e env) error {
	path, rest := extractConfigFlag(args)
	cfg, err := loadConfig(path, e.environ)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.Store, zap.NewNop())
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() { _ = st.Close() }()
	return userCommand(ctx, st.Users(), cfg.Auth, rest, e.stdin, e.stdout)
}

// extractConfigFlag removes "-config FILE" / "-config=FILE" (one or two
// dashes) from args, wherever it appears.
func extractConfigFlag(args []string) (string, []string) {
	var path string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		switch {
		case a != name && name == "config" && i+1 < len(args):
			path = args[i+1]
			i++
		case a != name && strings.HasPrefix(name, "config="):
			path = strings.TrimPrefix(name, "config=")
		default:
			rest = append(rest, a)
		}
	}
	return path, rest
}
