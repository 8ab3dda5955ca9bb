package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/convergo/convergo/internal/config"
	"github.com/convergo/convergo/sip"
)

var (
	// errUsage marks a command-line mistake (exit code 2).
	errUsage = errors.New("usage")
	// errConfig marks an invalid configuration (exit code 2, nothing touched).
	errConfig = errors.New("invalid configuration")
)

// env is what run needs from the process, injectable for tests.
type env struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	// onReady, when set, is called with the bound addresses once serve is ready.
	onReady func(addrs boundAddrs)
	// process is set by main only: serve may then change process-wide
	// library settings (sipgo's transaction timers), which tests set once
	// in TestMain instead because sipgo does not synchronise them.
	process bool
}

// run owns every long-lived goroutine and returns only after all have exited.
func run(ctx context.Context, args []string) error {
	return runEnv(ctx, args, env{environ: os.Environ(), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, process: true})
}

const usageText = `usage: convergo [command] [flags]

commands:
  serve [-config FILE] [-log-format console|json]   run the server (default)
  version                                          print the version
  config print [-config FILE]                      print the effective configuration, secrets masked
  config keys                                      list every key and its environment variable
  user add|passwd|roles|disable|list [-config FILE] ...   manage accounts in the configured store
`

func runEnv(ctx context.Context, args []string, e env) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		fs, cfgPath, logFormat := commonFlags("serve", e)
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		cfg, err := loadConfig(*cfgPath, e.environ)
		if err != nil {
			return err
		}
		if *logFormat != "" {
			cfg.Log.Format = *logFormat
			if err := cfg.Log.Validate(); err != nil {
				return fmt.Errorf("%w: -log-format: %w", errConfig, err)
			}
		}
		if e.process {
			sip.SetTransactionWait(cfg.SIP.TransactionWait)
		}
		return serve(ctx, cfg, e)
	case "version":
		fmt.Fprintln(e.stdout, "convergo", version)
		return nil
	case "config":
		return configCommand(args, e)
	case "user":
		return userCLI(ctx, args, e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usageText)
		return nil
	default:
		fmt.Fprint(e.stderr, usageText)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func commonFlags(name string, e env) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: none, built-in defaults)")
	logFormat := fs.String("log-format", "", "log format: console or json (overrides log.format)")
	return fs, cfgPath, logFormat
}

func configCommand(args []string, e env) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: config print|keys", errUsage)
	}
	sub, args := args[0], args[1:]
	fs, cfgPath, _ := commonFlags("config "+sub, e)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	switch sub {
	case "print":
		cfg, err := loadConfig(*cfgPath, e.environ)
		if err != nil {
			return err
		}
		out, err := renderConfig(cfg)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(out)
		return err
	case "keys":
		defaults := defaultConfig()
		fmt.Fprintf(e.stdout, "%-34s %-42s %-9s %s\n", "KEY", "ENVIRONMENT", "TYPE", "DEFAULT")
		for _, l := range configKeys() {
			fmt.Fprintf(e.stdout, "%-34s %-42s %-9s %s\n", l.Key, l.Env, l.Type, config.Value(&defaults, l.Key))
		}
		return nil
	default:
		return fmt.Errorf("%w: config %s: want print or keys", errUsage, sub)
	}
}
