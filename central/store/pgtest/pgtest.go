// Package pgtest gives tests a fresh PostgreSQL database: on the server
// named by HEARTH_TEST_PG, or else on a throwaway cluster it starts itself.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding a postgres:// URL of a server on which
// the tests may create and drop databases. When it is unset, a throwaway
// cluster is started with initdb and pg_ctl.
const EnvDSN = "HEARTH_TEST_PG"

// EnvRequire, when set to 1, turns the skip for a missing PostgreSQL into a
// failure: CI sets it so that the PostgreSQL tests can never be skipped
// silently (go test shows a passing package's skips only with -v).
const EnvRequire = "HEARTH_REQUIRE_PG"

// SkipMessage is the reason given when no PostgreSQL can be had.
const SkipMessage = "PostgreSQL not installed: SKIPPING PostgreSQL store tests; install postgresql-15 (or set " + EnvDSN + ")"

var (
	once    sync.Once
	srv     *server
	skipped string // non-empty: why there is no server
	failed  error

	mu    sync.Mutex // serialises CREATE DATABASE on admin
	admin *pgx.Conn
)

type server struct {
	url      *url.URL // of the maintenance database
	external bool     // from EnvDSN: drop our databases, never stop it
	dir      string   // throwaway cluster: data under dir/data, socket in dir
	bin      string
	runAs    *user.User // non-nil when running as root
}

// Main runs the tests of a package and stops the throwaway cluster, if one
// was started, afterwards. Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// DSN returns the postgres:// URL of a new, empty database. It skips tb
// loudly when PostgreSQL is not installed and fails it when a server
// cannot be started. Databases on an EnvDSN server are dropped in
// tb.Cleanup, so close what uses them in a cleanup registered later.
func DSN(tb testing.TB) string {
	tb.Helper()
	Require(tb)
	name := "hearth_test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	if srv.external {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				tb.Errorf("pgtest: drop database %s: %v", name, err)
			}
		})
	}
	u := *srv.url
	u.Path = "/" + name
	return u.String()
}

// Require starts the server when needed, and skips tb loudly when
// PostgreSQL is not installed (fails it when EnvRequire is 1) or fails it
// when the server cannot be started.
func Require(tb testing.TB) {
	tb.Helper()
	once.Do(start)
	if skipped != "" {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("%s, and %s=1", skipped, EnvRequire)
		}
		tb.Skip(skipped)
	}
	if failed != nil {
		tb.Fatalf("pgtest: %v", failed)
	}
}

func adminExec(ctx context.Context, sql string) error {
	mu.Lock()
	defer mu.Unlock()
	_, err := admin.Exec(ctx, sql)
	return err
}

// Stop stops the throwaway cluster and deletes its files.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if admin != nil {
		admin.Close(context.Background())
		admin = nil
	}
	if srv == nil || srv.external {
		return
	}
	if out, err := srv.run(srv.pgctl(), "-D", srv.data(), "-m", "immediate", "stop"); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n%s", err, out)
	}
	os.RemoveAll(srv.dir)
	srv = nil
}

func start() {
	if env := os.Getenv(EnvDSN); env != "" {
		u, err := url.Parse(env)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			failed = fmt.Errorf("%s must be a postgres:// URL", EnvDSN)
			return
		}
		srv = &server{url: u, external: true}
	} else {
		srv, failed = startCluster()
		if srv == nil && failed == nil {
			skipped = SkipMessage
			fmt.Fprintf(os.Stderr, "\n!!!!!!!!\n!!! %s\n!!!!!!!!\n\n", SkipMessage)
			return
		}
		if failed != nil {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, failed = pgx.Connect(ctx, srv.url.String())
}

// startCluster returns nil, nil when PostgreSQL is not installed.
func startCluster() (*server, error) {
	bin := findBin()
	if bin == "" {
		return nil, nil
	}
	s := &server{bin: bin}
	if os.Geteuid() == 0 { // postgres refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no user postgres to run the server as: %w", err)
		}
		s.runAs = u
	}
	dir, err := os.MkdirTemp("", "hearth-pgtest-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if s.runAs != nil {
		uid, _ := strconv.Atoi(s.runAs.Uid)
		gid, _ := strconv.Atoi(s.runAs.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := s.run(filepath.Join(bin, "initdb"), "-D", s.data(), "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	var lastErr error
	for range 3 { // the free port may be taken before the server binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", port, dir)
		out, err := s.run(s.pgctl(), "-D", s.data(), "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start")
		if err == nil {
			s.url = &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", port),
				Path: "/postgres", RawQuery: "sslmode=disable"}
			return s, nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		lastErr = fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *server) data() string  { return filepath.Join(s.dir, "data") }
func (s *server) pgctl() string { return filepath.Join(s.bin, "pg_ctl") }

// run runs a PostgreSQL program, as user postgres when we are root.
func (s *server) run(prog string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if s.runAs != nil {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs.Username, "--", prog}, args...)...)
	} else {
		cmd = exec.Command(prog, args...)
	}
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// findBin returns the directory holding initdb and pg_ctl: from PATH, or
// the newest /usr/lib/postgresql/*/bin; "" when there is none.
func findBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
