package htmlinject

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// A compressed body is decoded, spliced and re-encoded with the same
// content coding: the client accepted that coding, and `encode` in front of
// us leaves responses that already carry a Content-Encoding alone.
//
// The decompressors pull their input (io.Reader) while the body is pushed to
// us (Write). The decoding loop therefore runs as a coroutine (iter.Pull):
// Write hands it the chunk and resumes it; it decodes, splices and
// re-encodes until it needs more input, then yields back to Write. Nothing
// runs concurrently, nothing is buffered beyond the codecs' own windows, and
// the coroutine ends in Close (or at the first error).

// coding is a supported Content-Encoding.
type coding uint8

const (
	identity coding = iota
	codingGzip
	codingDeflate
	codingBrotli
	codingZstd
)

var codingNames = [...]string{"identity", "gzip", "deflate", "br", "zstd"}

// contentCoding reads the Content-Encoding field values. It reports false
// for an unknown coding or for several stacked ones.
func contentCoding(values []string) (coding, bool) {
	c := identity
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			item = strings.TrimSpace(item)
			var k coding
			switch {
			case item == "", strings.EqualFold(item, "identity"):
				continue
			case strings.EqualFold(item, "gzip"), strings.EqualFold(item, "x-gzip"):
				k = codingGzip
			case strings.EqualFold(item, "deflate"):
				k = codingDeflate
			case strings.EqualFold(item, "br"):
				k = codingBrotli
			case strings.EqualFold(item, "zstd"):
				k = codingZstd
			default:
				return identity, false
			}
			if c != identity {
				return identity, false
			}
			c = k
		}
	}
	return c, true
}

// Re-encoding levels: the fastest, since every compressed HTML page pays for
// them. On the 72 KB benchmark page, gzip 1 costs less than half of gzip 5
// for 13% more bytes; brotli 0 costs 30% less than brotli 1 for 3% more;
// zstd's fastest level costs 20% less than its default for 5% more.
const (
	gzipLevel   = gzip.BestSpeed
	flateLevel  = flate.BestSpeed
	brotliLevel = 0
	zstdLevel   = zstd.SpeedFastest

	// zstdMaxWindow is what RFC 9659 lets a zstd content coding use; it also
	// bounds the decoder's memory.
	zstdMaxWindow = 8 << 20
)

const (
	decodeBufSize = 32 << 10
	readBufSize   = 8 << 10
	// encodeBufSize batches the encoder's many small writes (dozens per
	// page) into few large Writes to dst: each Write of a chunked body costs
	// the connection a write syscall or two.
	encodeBufSize = 32 << 10
	// maxRaw bounds the compressed bytes kept, until the first decoded byte,
	// to pass an undecodable body through unchanged.
	maxRaw = 64 << 10
)

// encoder is what the gzip, zlib, flate, brotli and zstd writers share.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

var (
	codecPool = sync.Pool{New: func() any {
		return &codec{
			buf: make([]byte, decodeBufSize),
			br:  bufio.NewReaderSize(nil, readBufSize),
			bw:  bufio.NewWriterSize(nil, encodeBufSize),
		}
	}}

	gzipReaders  = sync.Pool{New: func() any { return new(gzip.Reader) }}
	zlibReaders  sync.Pool // io.ReadCloser implementing zlib.Resetter
	flateReaders sync.Pool // io.ReadCloser implementing flate.Resetter
	brReaders    = sync.Pool{New: func() any { return brotli.NewReader(nil) }}
	zstdReaders  = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // decode in the caller's goroutine: the coroutine
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			panic(err) // the options are constants
		}
		return d
	}}

	gzipWriters = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzipLevel)
		return w
	}}
	zlibWriters = sync.Pool{New: func() any {
		w, _ := zlib.NewWriterLevel(nil, flateLevel)
		return w
	}}
	flateWriters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flateLevel)
		return w
	}}
	brWriters   = sync.Pool{New: func() any { return brotli.NewWriterLevel(nil, brotliLevel) }}
	zstdWriters = sync.Pool{New: func() any {
		w, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstdLevel),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20),
			zstd.WithLowerEncoderMem(true),
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(err) // the options are constants
		}
		return w
	}}
)

var errStopped = errors.New("htmlinject: decoding stopped")

// chunkSource is the decoder's input: the chunk of the Write in progress.
// When it runs dry it yields, which suspends the decoding coroutine until
// the next Write (or Close, which sets eof).
type chunkSource struct {
	p       []byte
	eof     bool
	stopped bool
	yield   func(struct{}) bool
}

func (r *chunkSource) Read(b []byte) (int, error) {
	for len(r.p) == 0 {
		switch {
		case r.eof:
			return 0, io.EOF
		case r.stopped || !r.yield(struct{}{}):
			r.stopped = true
			return 0, errStopped
		}
	}
	n := copy(b, r.p)
	r.p = r.p[n:]
	return n, nil
}

// codec decodes a compressed body into the splicer, which writes into an
// encoder of the same coding.
type codec struct {
	coding coding
	dst    io.Writer
	sp     *splicer

	src  chunkSource
	br   *bufio.Reader // gives the decompressors the io.ByteReader they want
	bw   *bufio.Writer // between the encoder and dst
	dec  io.Reader
	w    encoder
	buf  []byte
	next func() (struct{}, bool)
	stop func()
	done bool  // the decoding loop returned
	in   int64 // compressed bytes written

	rawDeflate  bool   // a deflate body without the zlib wrapper
	produced    bool   // the decoder has returned data
	raw         []byte // compressed bytes consumed before the first decoded byte
	rawOver     bool   // raw outgrew maxRaw
	passthrough bool   // the body could not be decoded: pass it through as is
	err         error  // decoding error, wrapped
}

func newCodec(c coding, dst io.Writer, sp *splicer) *codec {
	cd := codecPool.Get().(*codec)
	cd.coding, cd.dst, cd.sp = c, dst, sp
	cd.br.Reset(&cd.src)
	cd.bw.Reset(dst)
	return cd
}

func (c *codec) write(p []byte) (int, error) {
	if c.passthrough {
		return c.dst.Write(p)
	}
	if err := c.failure(); err != nil {
		return 0, err
	}
	if c.done {
		return len(p), nil // bytes after the end of the compressed data are dropped
	}
	c.in += int64(len(p))
	c.src.p = p
	c.resume()
	c.src.p = nil // never retain the caller's buffer
	if c.produced {
		c.raw = c.raw[:0]
	} else {
		if c.err != nil && !c.rawOver {
			// Nothing decoded yet, so nothing written: pass the body through
			// rather than fail it (e.g. "Content-Encoding: gzip" on plain HTML).
			if err := c.passThrough(); err != nil {
				return 0, err
			}
			return c.dst.Write(p)
		}
		if len(c.raw)+len(p) > maxRaw {
			c.rawOver = true
		} else {
			c.raw = append(c.raw, p...)
		}
	}
	if err := c.failure(); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *codec) flush() error {
	if c.passthrough || !c.produced {
		// Before the first decoded byte there is nothing to flush, and an
		// encoder header now would spoil a pass-through.
		return nil
	}
	if err := c.failure(); err != nil {
		return err
	}
	if err := c.sp.flush(); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *codec) close() error {
	defer c.release()
	if c.passthrough {
		return nil
	}
	if c.failure() == nil {
		c.src.eof = true
		c.resume()
	}
	if (c.err != nil || c.in == 0) && !c.produced && !c.rawOver {
		// An empty body stays empty, even where an empty input is a valid
		// (empty) zstd stream.
		return c.passThrough()
	}
	if err := c.failure(); err != nil {
		return err
	}
	if err := c.sp.close(); err != nil {
		return err
	}
	if err := c.w.Close(); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *codec) failure() error {
	if c.sp.err != nil {
		return c.sp.err
	}
	return c.err
}

func (c *codec) passThrough() error {
	c.passthrough = true
	if len(c.raw) == 0 {
		return nil
	}
	_, err := c.dst.Write(c.raw)
	return err
}

// resume runs the decoding loop until it needs more input or ends.
func (c *codec) resume() {
	if c.done {
		return
	}
	if c.next == nil {
		c.next, c.stop = iter.Pull(c.decode)
	}
	if _, ok := c.next(); !ok {
		c.done = true
	}
}

// decode is the coroutine: decode, splice, re-encode.
func (c *codec) decode(yield func(struct{}) bool) {
	c.src.yield = yield
	if err := c.openDecoder(); err != nil {
		c.fail(err)
		return
	}
	c.w = c.getEncoder()
	c.sp.w = c.w
	for {
		n, err := c.dec.Read(c.buf)
		if c.src.stopped {
			return // Close gave up on this body: write nothing more
		}
		if n > 0 {
			c.produced = true
			if _, err := c.sp.write(c.buf[:n]); err != nil {
				return
			}
		}
		switch {
		case err == nil:
		case err == io.EOF:
			if c.coding == codingGzip && c.nextGzipMember() {
				continue
			}
			return // anything after the compressed data is ignored
		default:
			c.fail(err)
			return
		}
	}
}

func (c *codec) fail(err error) {
	if errors.Is(err, errStopped) {
		err = errStopped
	}
	c.err = fmt.Errorf("htmlinject: decoding %s body: %w", codingNames[c.coding], err)
}

func (c *codec) openDecoder() error {
	switch c.coding {
	case codingGzip:
		z := gzipReaders.Get().(*gzip.Reader)
		c.dec = z
		if err := z.Reset(c.br); err != nil {
			return err
		}
		// Members are followed by hand (nextGzipMember) so that trailing
		// garbage ends the body instead of failing it.
		z.Multistream(false)
	case codingDeflate:
		// HTTP's deflate is zlib (RFC 9110 §8.4.1.2), but some servers send
		// raw DEFLATE; a zlib header is recognisable (RFC 1950 §2.2).
		head, err := c.br.Peek(2)
		if len(head) < 2 {
			return err
		}
		c.rawDeflate = head[0]&0x0f != 8 || (uint16(head[0])<<8|uint16(head[1]))%31 != 0
		pool := &zlibReaders
		if c.rawDeflate {
			pool = &flateReaders
		}
		if r, ok := pool.Get().(io.ReadCloser); ok {
			c.dec = r
			if c.rawDeflate {
				return r.(flate.Resetter).Reset(c.br, nil)
			}
			return r.(zlib.Resetter).Reset(c.br, nil)
		}
		if c.rawDeflate {
			c.dec = flate.NewReader(c.br)
			return nil
		}
		r, err := zlib.NewReader(c.br)
		if err != nil {
			return err
		}
		c.dec = r
	case codingBrotli:
		r := brReaders.Get().(*brotli.Reader)
		c.dec = r
		return r.Reset(c.br)
	case codingZstd:
		d := zstdReaders.Get().(*zstd.Decoder)
		c.dec = d
		return d.Reset(c.br)
	}
	return nil
}

// nextGzipMember starts decoding the next member of a multi-member gzip
// body, if one follows.
func (c *codec) nextGzipMember() bool {
	head, _ := c.br.Peek(2)
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return false
	}
	z := c.dec.(*gzip.Reader)
	if err := z.Reset(c.br); err != nil {
		c.fail(err)
		return false
	}
	z.Multistream(false)
	return true
}

func (c *codec) getEncoder() encoder {
	var w encoder
	switch c.coding {
	case codingGzip:
		w = gzipWriters.Get().(*gzip.Writer)
	case codingDeflate:
		if c.rawDeflate {
			w = flateWriters.Get().(*flate.Writer)
		} else {
			w = zlibWriters.Get().(*zlib.Writer)
		}
	case codingBrotli:
		w = brWriters.Get().(*brotli.Writer)
	case codingZstd:
		w = zstdWriters.Get().(*zstd.Encoder)
	}
	w.Reset(c.bw)
	return w
}

// release ends the coroutine and returns the codecs to their pools.
func (c *codec) release() {
	if c.stop != nil {
		c.stop()
	}
	if c.dec != nil {
		switch c.coding {
		case codingGzip:
			gzipReaders.Put(c.dec)
		case codingDeflate:
			if c.rawDeflate {
				flateReaders.Put(c.dec)
			} else {
				zlibReaders.Put(c.dec)
			}
		case codingBrotli:
			brReaders.Put(c.dec)
		case codingZstd:
			d := c.dec.(*zstd.Decoder)
			_ = d.Reset(nil) // drop the reference to this response
			zstdReaders.Put(d)
		}
	}
	if c.w != nil {
		c.w.Reset(io.Discard)
		switch c.coding {
		case codingGzip:
			gzipWriters.Put(c.w)
		case codingDeflate:
			if c.rawDeflate {
				flateWriters.Put(c.w)
			} else {
				zlibWriters.Put(c.w)
			}
		case codingBrotli:
			brWriters.Put(c.w)
		case codingZstd:
			zstdWriters.Put(c.w)
		}
	}
	c.br.Reset(nil)
	c.bw.Reset(nil)
	*c = codec{buf: c.buf, br: c.br, bw: c.bw, raw: c.raw[:0]}
	codecPool.Put(c)
}
