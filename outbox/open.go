package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// errCorrupt marks a file that cannot be trusted; Open moves it aside.
var errCorrupt = errors.New("outbox file is corrupt")

// initialMmapSize is modest: a 32-bit router maps at most 1-2 GiB in all.
const initialMmapSize = 1 << 20

// Suffixes of the files kept next to the database.
const (
	suffixCheck   = ".check"   // a full check is due on the next Open
	suffixCompact = ".compact" // a compaction in progress
	suffixCorrupt = ".corrupt-"
)

// openOrRecover opens the file, moving it aside and starting afresh when
// it is corrupt.
func (o *Outbox) openOrRecover() (*bolt.DB, state, error) {
	_, err := os.Stat(o.path + suffixCheck)
	forceCheck := err == nil
	db, st, err := o.openChecked(forceCheck)
	if errors.Is(err, errCorrupt) {
		aside, merr := moveAside(o.path, o.opts.Now().UTC().Format("20060102T150405Z"))
		if merr != nil {
			return nil, state{}, fmt.Errorf("move corrupt outbox aside: %w (it was found corrupt: %v)", merr, err)
		}
		o.log.Error("outbox file is corrupt; moved it aside and starting an empty outbox. Messages in it were not forwarded: recover them from the moved file",
			"moved_to", aside, "err", err)
		db, st, err = o.openChecked(false)
	}
	if err != nil {
		return nil, state{}, err
	}
	if forceCheck {
		_ = os.Remove(o.path + suffixCheck)
	}
	_ = os.Remove(o.path + suffixCompact) // left by a compaction that was cut short
	return db, st, nil
}

// openChecked opens the file and verifies it: cheap checks always, bbolt's
// full check when the file is small enough or a check is due.
func (o *Outbox) openChecked(forceCheck bool) (*bolt.DB, state, error) {
	fi, statErr := os.Stat(o.path)
	wasEmpty := statErr == nil && fi.Size() == 0
	full := forceCheck || statErr == nil && o.opts.CheckMaxBytes > 0 && fi.Size() <= o.opts.CheckMaxBytes
	if statErr == nil && fi.Size() > 0 {
		if err := prewalk(o.path, o.opts); err != nil {
			return nil, state{}, err
		}
	}
	db, err := openBolt(o.path, o.opts)
	if err != nil {
		return nil, state{}, err
	}
	st, err := o.prepare(db, wasEmpty, full)
	if err != nil {
		_ = db.Close()
		return nil, state{}, err
	}
	return db, st, nil
}

// openBolt opens the bbolt file and sorts its failures into locked,
// corrupt and others.
func openBolt(path string, opts Options) (*bolt.DB, error) {
	var f *os.File
	bopts := boltOptions(opts)
	bopts.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, mode)
		return f, err
	}
	var db *bolt.DB
	err := guard(func() (err error) {
		db, err = bolt.Open(path, 0o600, bopts)
		return err
	})
	if err == nil {
		return db, nil
	}
	if errors.Is(err, errCorrupt) && f != nil {
		_ = f.Close() // bolt.Open panicked and left it open and locked
	}
	return nil, classifyOpenErr(path, opts, err)
}

// classifyOpenErr sorts a failed bolt.Open into locked, corrupt and others.
func classifyOpenErr(path string, opts Options, err error) error {
	switch {
	case errors.Is(err, errCorrupt):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("open outbox %s: %w (waited %s): %w", path, ErrLocked, opts.OpenTimeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return fmt.Errorf("open outbox %s: %w", path, err)
}

// prewalk checks the page tree before the file is opened for writing. With
// NoFreelistSync, bbolt's Open rebuilds the freelist by walking every page
// in a goroutine of its own, where a corrupt page panics or faults beyond
// any recover: the process would die on every start. A read-only open does
// not build the freelist, so the tree is walked here first (reading the
// file, not the mmap), and a corrupt file is moved aside instead.
func prewalk(path string, opts Options) error {
	bopts := boltOptions(opts)
	bopts.ReadOnly = true
	var f *os.File
	bopts.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, mode)
		return f, err
	}
	var db *bolt.DB
	err := guard(func() (err error) {
		db, err = bolt.Open(path, 0o600, bopts)
		return err
	})
	if err != nil {
		if errors.Is(err, errCorrupt) && f != nil {
			_ = f.Close()
		}
		return classifyOpenErr(path, opts, err)
	}
	defer db.Close()
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if err := checkPages(db, tx); err != nil {
				return fmt.Errorf("%w: %w", errCorrupt, err)
			}
			return nil
		})
	})
}

// MaxFileBytes32 bounds the outbox file on a 32-bit CPU (bbolt's
// MaxSize): bbolt maps the whole file, in sizes that double up to 1 GiB,
// and a 32-bit process has little address space; at 512 MiB the map stays
// at 512 MiB. A commit that would grow the file past it fails with
// hearth.ErrFull, as a full disk does. The quota (MaxBytes) must leave
// room for the file's overhead: hearthd refuses one above half of it.
const MaxFileBytes32 = 512 << 20

// maxFileBytes is bbolt's MaxSize: opts.MaxFileBytes, or by default
// MaxFileBytes32 on a 32-bit CPU and none (0) on 64-bit.
func maxFileBytes(opts Options) int {
	if opts.MaxFileBytes > 0 {
		return int(min(opts.MaxFileBytes, int64(^uint(0)>>1)))
	}
	if strconv.IntSize == 32 {
		return MaxFileBytes32
	}
	return 0
}

func boltOptions(opts Options) *bolt.Options {
	return &bolt.Options{
		MaxSize:         maxFileBytes(opts),
		Timeout:         opts.OpenTimeout,
		InitialMmapSize: initialMmapSize,
		FreelistType:    bolt.FreelistMapType,
		// The freelist is not written by each commit (a page or more of
		// every commit's writes) but rebuilt at open by a scan of the page
		// tree; see bench/RESULTS.md for the open time of a large file.
		NoFreelistSync: true,
	}
}

// prepare verifies an open file, reads its counters, and initialises or
// migrates it. A newer format is refused before anything is written.
func (o *Outbox) prepare(db *bolt.DB, wasEmpty, fullCheck bool) (st state, err error) {
	err = guard(func() error {
		if err := verify(db, fullCheck); err != nil {
			return err
		}
		var ok bool
		err := db.View(func(tx *bolt.Tx) (err error) {
			st, ok, err = load(tx, wasEmpty)
			return err
		})
		if err != nil || ok {
			return err
		}
		return db.Update(func(tx *bolt.Tx) (err error) {
			st, err = initialize(tx)
			return err
		})
	})
	return st, err
}

// verify catches a truncated file and, when full is set, checks the page
// tree and then runs bbolt's consistency check.
func verify(db *bolt.DB, full bool) error {
	return db.View(func(tx *bolt.Tx) error {
		fi, err := os.Stat(db.Path())
		if err != nil {
			return fmt.Errorf("stat outbox: %w", err)
		}
		if fi.Size() < tx.Size() {
			return fmt.Errorf("%w: file is %d bytes but its pages reach %d: truncated", errCorrupt, fi.Size(), tx.Size())
		}
		if !full {
			return nil
		}
		if err := checkPages(db, tx); err != nil {
			return fmt.Errorf("%w: %w", errCorrupt, err)
		}
		var problems []string
		for err := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, err.Error())
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%w: consistency check: %s", errCorrupt, strings.Join(problems, "; "))
		}
		return nil
	})
}

// load reads the format version and counters. ok is false when the file
// must be initialised, migrated or recounted.
func load(tx *bolt.Tx, wasEmpty bool) (st state, ok bool, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if wasEmpty {
			return st, false, fmt.Errorf("%w: the file was empty (0 bytes); whatever it held is lost", errCorrupt)
		}
		return st, false, nil
	}
	version, found, err := getU64(meta, keyFormat)
	if err != nil {
		return st, false, err
	}
	if version > FormatVersion {
		return st, false, fmt.Errorf("open outbox %s: file format %d, this build reads up to %d: %w",
			tx.DB().Path(), version, FormatVersion, ErrNewerFormat)
	}
	if !found || version < FormatVersion {
		return st, false, nil
	}
	return loadState(tx)
}

// initialize creates what is missing, migrates an older format and
// recounts the counters when they cannot be trusted.
func initialize(tx *bolt.Tx) (state, error) {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return state{}, err
	}
	for _, name := range [][]byte{bucketPending, bucketDead} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return state{}, err
		}
	}
	// No format changed a stored record: format 1's records are read as
	// they are (see FormatVersion). Its counters, when they agree with the
	// queue, are kept, so migrating a large file reads no record; a file
	// without a format (older, or new) is always recounted.
	_, versioned, err := getU64(meta, keyFormat)
	if err != nil {
		return state{}, err
	}
	st, ok, err := loadState(tx)
	if err != nil {
		return state{}, err
	}
	if !ok || !versioned {
		st = recount(tx)
		if _, err := st.put(meta, nil); err != nil {
			return state{}, err
		}
	}
	return st, meta.Put(keyFormat, seqKey(FormatVersion))
}

// moveAside renames path to "<path>.corrupt-<stamp>", never over a file.
func moveAside(path, stamp string) (string, error) {
	base := path + suffixCorrupt + stamp
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, name); err != nil {
		return "", err
	}
	return name, syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// guard runs fn, turning a panic in bbolt, including a memory fault on a
// truncated or garbled mmap, into an error wrapping errCorrupt.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if s, ok := p.(string); ok && strings.HasPrefix(s, "BUG:") {
			panic(p)
		}
		err = fmt.Errorf("%w: bbolt panicked: %v", errCorrupt, p)
	}()
	return fn()
}

// suspect records that the file looks corrupt, so that the next Open runs
// a full check whatever the file's size.
func (o *Outbox) suspect(err error) {
	o.suspectOnce.Do(func() {
		o.log.Error("outbox file looks corrupt; it gets a full check on the next start", "err", err)
		if f, ferr := os.Create(o.path + suffixCheck); ferr == nil {
			_ = f.Close()
			_ = syncDir(filepath.Dir(o.path))
		}
	})
}

// checkPages runs walkPages on the file of tx.
func checkPages(db *bolt.DB, tx *bolt.Tx) error {
	f, err := os.Open(db.Path())
	if err != nil {
		return err
	}
	defer f.Close()
	ps := db.Info().PageSize
	return walkPages(f, ps, uint64(tx.ID()), uint64(tx.Size())/uint64(ps))
}
