package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/daemon"
)

const deadLettersUsage = `usage: hearthd deadletters list|retry|purge [flags]

  list    show the dead letters: reason code and text, child (shortened),
          type, received_at and size
  retry   put them back in the queue (a new seq, the original received_at),
          e.g. after the child was added at central
  purge   delete them; needs a filter or --all

Filters: --reason CODE (unknown_child, foreign_child, invalid, too_old,
future, unknown_type, rejected, too_large, poison, undecodable, other),
--child HASH (or its start), --older-than DURATION (received that long
ago), --limit N. Talks to the running hearthd on its admin listener
(admin_listen, from the configuration).`

// deadLetters runs "hearthd deadletters ACTION [flags]".
func deadLetters(args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "retry" && args[0] != "purge") {
		return errors.New(deadLettersUsage)
	}
	action := args[0]
	cfg := daemon.DefaultConfig()
	b := config.NewBinder("hearthd deadletters "+action, os.Stderr)
	cfg.Bind(b)
	fs := b.FlagSet()
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	reason := fs.String("reason", "", "only dead letters of this reason code")
	child := fs.String("child", "", "only dead letters of this child (a hash or its start)")
	olderThan := fs.Duration("older-than", 0, "only dead letters received at least this long ago")
	limit := fs.Int("limit", 0, "at most this many, oldest first (0: all)")
	all := fs.Bool("all", false, "purge: every dead letter (a purge needs a filter or --all)")
	if _, err := b.Load(&cfg, args[1:], "/etc/hearth/hearthd.yaml"); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"reason": *reason, "child": *child} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *olderThan > 0 {
		q.Set("older_than", olderThan.String())
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *all {
		q.Set("all", "1")
	}
	if action == "purge" && len(q) == 0 {
		return errors.New("purge needs a filter (--reason, --child, --older-than) or --all")
	}
	reply, raw, err := callDeadLetters(adminURL(cfg.AdminListen), action, q)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	printDeadLetters(stdout, action, reply)
	return nil
}

// adminURL is the admin listener's base URL; an address listening on
// every interface is reached on loopback.
func adminURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// callDeadLetters sends one dead-letter request; an answer with an error
// is returned as one (with what was done, for a partial retry).
func callDeadLetters(base, action string, q url.Values) (daemon.DeadLettersReply, []byte, error) {
	path, method := daemon.PathDeadLetters, http.MethodGet
	if action != "list" {
		path, method = daemon.PathDeadLetters+"/"+action, http.MethodPost
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return daemon.DeadLettersReply{}, nil, err
	}
	req.Header.Set(daemon.AdminHeader, "1")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return daemon.DeadLettersReply{}, nil, fmt.Errorf("is hearthd running? %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return daemon.DeadLettersReply{}, nil, err
	}
	var reply daemon.DeadLettersReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return reply, raw, fmt.Errorf("hearthd answered %d: %.200s", resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		return reply, raw, fmt.Errorf("hearthd refused (%d): %s (retried %d)", resp.StatusCode, reply.Error, reply.Retried)
	}
	return reply, raw, nil
}

func printDeadLetters(w io.Writer, action string, r daemon.DeadLettersReply) {
	switch action {
	case "retry":
		fmt.Fprintf(w, "%d dead letters put back in the queue", r.Retried)
		if r.Skipped > 0 {
			fmt.Fprintf(w, "; %d undecodable left in place", r.Skipped)
		}
		fmt.Fprintln(w)
		return
	case "purge":
		fmt.Fprintf(w, "%d dead letters purged\n", r.Purged)
		return
	}
	if len(r.DeadLetters) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tCODE\tCHILD\tTYPE\tRECEIVED_AT\tSIZE\tREASON")
	for _, d := range r.DeadLetters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.Code, d.Child, d.Type, d.ReceivedAt.UTC().Format(time.RFC3339), d.Size, d.Reason)
	}
	_ = tw.Flush()
}
