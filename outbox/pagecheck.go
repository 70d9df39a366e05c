package outbox

import (
	"encoding/binary"
	"fmt"
	"io"
)

// bbolt's on-disk layout (format 2, native byte order), as far as
// walkPages needs it.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	bucketLeafFlag   = 0x01
	bucketHeaderSize = 16 // root pgid u64, sequence u64; an inline page follows when root is 0
	metaRootOffset   = pageHeaderSize + 16
	metaTxidOffset   = metaRootOffset + 16 + 8 + 8
	maxTreeDepth     = 64
)

var native = binary.NativeEndian

// walkPages checks the page tree of the transaction txid by reading the file,
// not the mmap: every page must lie below the high-water mark hwm (in pages),
// be what its parent says, be referenced once (no cycles), and hold its
// elements within its bounds. bbolt trusts all of this; tx.Check does not
// survive a page that breaks it (a memory fault in its own goroutine kills
// the process, and a cycle never ends), so this runs first.
func walkPages(f io.ReaderAt, pageSize int, txid, hwm uint64) error {
	w := pageWalker{f: f, pageSize: uint64(pageSize), hwm: hwm, seen: map[uint64]bool{0: true, 1: true}}
	for id := uint64(0); id < 2; id++ {
		meta, err := w.read(id, 1)
		if err != nil {
			return err
		}
		if native.Uint64(meta[metaTxidOffset:]) == txid {
			return w.page(native.Uint64(meta[metaRootOffset:]), 0)
		}
	}
	return fmt.Errorf("no meta page of transaction %d", txid)
}

type pageWalker struct {
	f             io.ReaderAt
	pageSize, hwm uint64
	seen          map[uint64]bool
}

func (w *pageWalker) read(id, pages uint64) ([]byte, error) {
	b := make([]byte, pages*w.pageSize)
	if _, err := w.f.ReadAt(b, int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("read page %d: %w", id, err)
	}
	return b, nil
}

// page checks page id and everything below it.
func (w *pageWalker) page(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	if id < 2 || id >= w.hwm {
		return fmt.Errorf("page %d: outside [2, %d)", id, w.hwm)
	}
	hdr, err := w.read(id, 1)
	if err != nil {
		return err
	}
	if got := native.Uint64(hdr); got != id {
		return fmt.Errorf("page %d: header says page %d", id, got)
	}
	overflow := uint64(native.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return fmt.Errorf("page %d: %d overflow pages pass the end", id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return fmt.Errorf("page %d: referenced twice", i)
		}
		w.seen[i] = true
	}
	p := hdr
	if overflow > 0 {
		if p, err = w.read(id, overflow+1); err != nil {
			return err
		}
	}
	return w.elements(id, p, depth)
}

// elements checks the elements of page p (header included), which may be
// an inline bucket's page inside a value.
func (w *pageWalker) elements(id uint64, p []byte, depth int) error {
	if len(p) < pageHeaderSize {
		return fmt.Errorf("page %d: %d bytes", id, len(p))
	}
	flags, count := native.Uint16(p[8:]), uint64(native.Uint16(p[10:]))
	size := uint64(len(p))
	if pageHeaderSize+count*elementSize > size {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	for i := uint64(0); i < count; i++ {
		e := pageHeaderSize + i*elementSize
		el := p[e : e+elementSize]
		switch flags {
		case branchPageFlag:
			pos, ksize := uint64(native.Uint32(el[0:])), uint64(native.Uint32(el[4:]))
			if e+pos+ksize > size {
				return fmt.Errorf("page %d: element %d outside the page", id, i)
			}
			if err := w.page(native.Uint64(el[8:]), depth+1); err != nil {
				return err
			}
		case leafPageFlag:
			eflags, pos := native.Uint32(el[0:]), uint64(native.Uint32(el[4:]))
			ksize, vsize := uint64(native.Uint32(el[8:])), uint64(native.Uint32(el[12:]))
			start := e + pos + ksize
			if start+vsize > size {
				return fmt.Errorf("page %d: element %d outside the page", id, i)
			}
			if eflags&bucketLeafFlag != 0 {
				if err := w.bucket(id, p[start:start+vsize], depth); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("page %d: flags %#x, want a branch or leaf page", id, flags)
		}
	}
	return nil
}

// bucket checks the tree of a nested bucket whose header is v.
func (w *pageWalker) bucket(id uint64, v []byte, depth int) error {
	if len(v) < bucketHeaderSize {
		return fmt.Errorf("page %d: bucket header of %d bytes", id, len(v))
	}
	if root := native.Uint64(v); root != 0 {
		return w.page(root, depth+1)
	}
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: buckets nested deeper than %d", id, maxTreeDepth)
	}
	return w.elements(id, v[bucketHeaderSize:], depth+1)
}
