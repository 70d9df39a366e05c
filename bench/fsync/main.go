// Command fsync measures what one bbolt commit waits for on this disk: it
// writes a 4 KiB page at a random offset of a preallocated file, then
// fdatasyncs, many times, and prints the latency distribution of the
// fdatasync alone and of a pair (a bbolt commit makes two: data pages,
// then the meta page). It bounds what the 1-phone ack latency can be here:
// with one phone each ack waits for its own commit.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory of the test file (put it on the outbox's disk)")
	n := flag.Int("n", 2000, "commits to time")
	pace := flag.Duration("pace", 0, "pause between commits (0: back to back)")
	dataPages := flag.Int("pages", 1, "data pages written before the first fdatasync (a 50-phone commit writes ~8)")
	flag.Parse()
	f, err := os.CreateTemp(*dir, "fsync-*.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const pages = 256
	page := make([]byte, 4096)
	if err := f.Truncate(pages * 4096); err != nil {
		log.Fatal(err)
	}
	fd := int(f.Fd())
	if err := unix.Fsync(fd); err != nil {
		log.Fatal(err)
	}
	one := make([]time.Duration, 0, 2**n)
	pair := make([]time.Duration, 0, *n)
	for range *n {
		start := time.Now()
		for i := range 2 { // data pages, then the meta page (page 0 or 1)
			writes := []int64{int64(i) * 4096}
			if i == 0 {
				first := 2 + rand.IntN(pages-2-*dataPages)
				writes = writes[:0]
				for p := range *dataPages {
					writes = append(writes, int64(first+p)*4096)
				}
			}
			for _, off := range writes {
				if _, err := f.WriteAt(page, off); err != nil {
					log.Fatal(err)
				}
			}
			t := time.Now()
			if err := unix.Fdatasync(fd); err != nil {
				log.Fatal(err)
			}
			one = append(one, time.Since(t))
		}
		pair = append(pair, time.Since(start))
		if *pace > 0 {
			time.Sleep(*pace)
		}
	}
	fmt.Printf("file %s\n", filepath.Dir(f.Name()))
	report("fdatasync", one)
	report("commit (2 x pwrite+fdatasync)", pair)
}

func report(name string, d []time.Duration) {
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	q := func(p float64) float64 {
		return float64(d[min(int(p*float64(len(d))), len(d)-1)].Microseconds()) / 1000
	}
	mean := float64(sum.Microseconds()) / 1000 / float64(len(d))
	fmt.Printf("%-30s n=%d mean %.3f ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", name, len(d), mean, q(.5), q(.9), q(.99), q(.999), q(1))
}
