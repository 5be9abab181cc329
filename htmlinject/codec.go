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
// Nothing goes out before the decision, so that a body that cannot get the
// snippet goes out exactly as it came, compressed bytes untouched: one
// that does not decode, decodes to more than Config.MaxDecoded bytes
// (or arrives as more than that), declares a decoder window above the
// bound (maxZstdWindow, maxBrotliWindowBits), carries the marker or lacks
// Require. So the compressed bytes are held, as they come, and decoded a
// first time into a splicer that decides and writes nothing. At Close, a
// body that gets the snippet is decoded a second time from the held bytes
// and re-encoded with the snippet at the decided offset; any other goes
// out as held. Past a bound, or once the marker is seen, the held bytes
// go out at once and the rest follows unread.
//
// The decompressors pull their input (io.Reader) while the body is pushed to
// us (Write). The first pass therefore runs as a coroutine (iter.Pull):
// Write hands it the chunk and resumes it; it decodes into the splicer
// until it needs more input, then yields back to Write. Nothing runs
// concurrently, and the coroutine ends in Close (or at the decision).
//
// Memory per compressed page in flight: the compressed bytes so far, the
// decoder's state (its window: 32 KiB for gzip and deflate; for brotli a
// ring buffer that grows with the page up to 2^WBITS; for zstd the window
// the frame declares), the splicer's buffer, and 40 KiB of codec buffers.
// The encoder exists only during Close. TestMemoryPerPage measures it.

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
)

// Decoder windows. The decoders allocate them per page in flight: a zstd
// decoder the whole window its frame declares, at once; a brotli decoder a
// ring buffer that grows with the page up to its window. A page whose
// stream declares more passes through unchanged. zstd's bound covers
// Caddy's encoder (128 KiB), nginx's default level (512 KiB) and the
// reference library's default level on streams of unknown size (2 MiB);
// RFC 9659 lets a zstd content coding use up to 8 MiB. brotli's covers the
// reference library's default (4 MiB, lgwin 22).
const (
	maxZstdWindow       = 2 << 20
	maxBrotliWindowBits = 22
)

// DefaultMaxDecoded is the default of Config.MaxDecoded.
const DefaultMaxDecoded = 8 << 20

const (
	decodeBufSize = 32 << 10
	readBufSize   = 8 << 10
	// encodeBufSize batches the encoder's many small writes (dozens per
	// page) into few large Writes to dst: each Write of a chunked body costs
	// the connection a write syscall or two.
	encodeBufSize = 32 << 10
	// rawChunkSize is the unit in which compressed bytes are held.
	rawChunkSize = 16 << 10
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
		}
	}}
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, encodeBufSize) }}
	rawChunks  = sync.Pool{New: func() any { return new([rawChunkSize]byte) }}

	gzipReaders  = sync.Pool{New: func() any { return new(gzip.Reader) }}
	zlibReaders  sync.Pool // io.ReadCloser implementing zlib.Resetter
	flateReaders sync.Pool // io.ReadCloser implementing flate.Resetter
	brReaders    = sync.Pool{New: func() any { return brotli.NewReader(nil) }}
	zstdReaders  = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // decode in the caller's goroutine: the coroutine
			zstd.WithDecoderMaxWindow(maxZstdWindow),
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

var (
	errStopped   = errors.New("htmlinject: decoding stopped")
	errTooLarge  = errors.New("htmlinject: the body decodes to more than the bound")
	errBigWindow = errors.New("htmlinject: the stream's window is larger than the bound")
)

// chunkSource is the first pass's input: the chunk of the Write in
// progress. When it runs dry it yields, which suspends the decoding
// coroutine until the next Write (or Close, which sets eof).
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

// rawBody holds compressed bytes as they came, in pooled chunks.
type rawBody struct {
	chunks []*[rawChunkSize]byte
	n      int64
}

func (r *rawBody) append(p []byte) {
	for len(p) > 0 {
		at := int(r.n % rawChunkSize)
		if at == 0 && int64(len(r.chunks))*rawChunkSize == r.n {
			r.chunks = append(r.chunks, rawChunks.Get().(*[rawChunkSize]byte))
		}
		k := copy(r.chunks[len(r.chunks)-1][at:], p)
		p = p[k:]
		r.n += int64(k)
	}
}

// writeTo writes the held bytes to w, in chunks.
func (r *rawBody) writeTo(w io.Writer) error {
	left := r.n
	for _, c := range r.chunks {
		n := min(left, rawChunkSize)
		if _, err := w.Write(c[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

func (r *rawBody) release() {
	for i, c := range r.chunks {
		rawChunks.Put(c)
		r.chunks[i] = nil
	}
	r.chunks, r.n = r.chunks[:0], 0
}

// rawReader reads a rawBody, for the second pass.
type rawReader struct {
	r   *rawBody
	off int64
}

func (rr *rawReader) Read(b []byte) (int, error) {
	if rr.off >= rr.r.n {
		return 0, io.EOF
	}
	c := rr.r.chunks[rr.off/rawChunkSize]
	at := int(rr.off % rawChunkSize)
	end := min(rawChunkSize, at+int(rr.r.n-rr.off))
	n := copy(b, c[at:end])
	rr.off += int64(n)
	return n, nil
}

// codec decides, then writes, one compressed body: see the top of this
// file.
type codec struct {
	coding     coding
	dst        io.Writer
	sp         *splicer // the first pass's, dry
	maxDecoded int64

	raw     rawBody
	decoded int64 // bytes the first pass decoded

	src        chunkSource
	br         *bufio.Reader // gives the decompressors the io.ByteReader they want
	dec        io.Reader
	rawDeflate bool // a deflate body without the zlib wrapper
	buf        []byte
	next       func() (struct{}, bool)
	stop       func()
	done       bool  // the first pass returned
	err        error // why the first pass gave up, if it did

	passthrough bool  // decided: the body goes out as it came
	werr        error // sticky error from dst
}

func newCodec(c coding, dst io.Writer, sp *splicer, maxDecoded int64) *codec {
	cd := codecPool.Get().(*codec)
	cd.coding, cd.dst, cd.sp, cd.maxDecoded = c, dst, sp, maxDecoded
	sp.dry = true
	cd.br.Reset(&cd.src)
	return cd
}

func (c *codec) write(p []byte) (int, error) {
	if c.werr != nil {
		return 0, c.werr
	}
	if c.passthrough {
		return c.writeDst(p)
	}
	if c.raw.n+int64(len(p)) > c.maxDecoded {
		c.err = errTooLarge
		if err := c.passThrough(); err != nil {
			return 0, err
		}
		return c.writeDst(p)
	}
	c.raw.append(p)
	if !c.done {
		c.src.p = p
		c.resume()
		c.src.p = nil // never retain the caller's buffer
	}
	// Decided early: undecodable, too large, or carrying the marker.
	if c.err != nil || c.sp.found {
		if err := c.passThrough(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes nothing: before the decision nothing may go out (a
// compressed body is not rendered progressively), and after a pass-through
// decision every byte has gone out already.
func (c *codec) flush() error { return c.werr }

func (c *codec) close() error {
	defer c.release()
	if c.werr != nil || c.passthrough {
		return c.werr
	}
	if !c.done {
		c.src.eof = true
		c.resume()
	}
	if c.err != nil || c.raw.n == 0 {
		// An empty body stays empty, even where an empty input is a valid
		// (empty) zstd stream.
		return c.passThrough()
	}
	if err := c.sp.close(); err != nil {
		return err
	}
	if c.sp.insertAt < 0 {
		c.sp.inserted = false
		return c.passThrough()
	}
	return c.rewrite()
}

// passThrough writes the held bytes and lets the rest through.
func (c *codec) passThrough() error {
	c.passthrough = true
	c.sp.inserted = false
	c.endFirstPass()
	err := c.raw.writeTo(c.dst)
	c.raw.release()
	if err != nil {
		c.werr = err
	}
	return err
}

func (c *codec) writeDst(p []byte) (int, error) {
	n, err := c.dst.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		c.werr = err
	}
	return n, err
}

// resume runs the first pass until it needs more input or ends.
func (c *codec) resume() {
	if c.next == nil {
		c.next, c.stop = iter.Pull(c.firstPass)
	}
	if _, ok := c.next(); !ok {
		c.done = true
	}
}

// endFirstPass stops the coroutine, if running, and frees the decoder.
func (c *codec) endFirstPass() {
	if c.stop != nil {
		c.stop()
		c.stop, c.next = nil, nil
	}
	c.done = true
	c.putDecoder()
}

// firstPass is the coroutine: decode into the dry splicer.
func (c *codec) firstPass(yield func(struct{}) bool) {
	c.src.yield = yield
	if err := c.openDecoder(c.br); err != nil {
		c.fail(err)
		return
	}
	err := c.decode(c.br, func(p []byte) error {
		if c.decoded += int64(len(p)); c.decoded > c.maxDecoded {
			return errTooLarge
		}
		c.sp.write(p)
		if c.sp.found {
			return errStopped // the marker: no need to read on
		}
		return nil
	})
	if err != nil && !c.sp.found {
		c.fail(err)
	}
}

// decode reads the body from br through the open decoder and hands out
// what it decodes, until the end of the compressed data (further gzip
// members included; anything after the data is ignored).
func (c *codec) decode(br *bufio.Reader, out func([]byte) error) error {
	for {
		n, err := c.dec.Read(c.buf)
		if c.src.stopped {
			return errStopped // Close gave up on this body
		}
		if n > 0 {
			if err := out(c.buf[:n]); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
		case err == io.EOF:
			if c.coding != codingGzip {
				return nil
			}
			if more, err := c.nextGzipMember(br); !more {
				return err
			}
		default:
			return err
		}
	}
}

func (c *codec) fail(err error) {
	if errors.Is(err, errStopped) {
		err = errStopped
	}
	c.err = fmt.Errorf("htmlinject: decoding %s body: %w", codingNames[c.coding], err)
}

// rewrite is the second pass: decode the held bytes again and write them
// re-encoded, the snippet at the decided offset.
//
// A page that never outgrew the splicer's window (about 80 KB decoded, most
// pages) is still whole in its buffer: it is encoded from there, without
// the second decoding.
func (c *codec) rewrite() error {
	c.endFirstPass()
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(c.dst)
	w := c.getEncoder(bw)
	defer func() {
		c.putEncoder(w)
		bw.Reset(nil)
		bufWriters.Put(bw)
	}()
	at, off, done := c.sp.insertAt, int64(0), false
	var err error
	if sp := c.sp; sp.base == 0 && sp.out == 0 && int64(len(sp.buf)) == c.decoded {
		// One Write, as the splicer does: an encoder compresses each Write
		// on its own (brotli's fastest level costs 25% more in three).
		if end := len(sp.buf); cap(sp.buf)-end >= len(sp.section) {
			sp.buf = sp.buf[:end+len(sp.section)]
			copy(sp.buf[at+int64(len(sp.section)):], sp.buf[at:end])
			copy(sp.buf[at:], sp.section)
			_, err = w.Write(sp.buf)
		} else if _, err = w.Write(sp.buf[:at]); err == nil {
			if _, err = w.Write(sp.section); err == nil {
				_, err = w.Write(sp.buf[at:])
			}
		}
		return c.finish(w, bw, err)
	}
	c.src = chunkSource{}
	c.br.Reset(&rawReader{r: &c.raw})
	if err := c.openDecoder(c.br); err != nil {
		c.werr = fmt.Errorf("htmlinject: decoding %s body again: %w", codingNames[c.coding], err)
		return c.werr
	}
	err = c.decode(c.br, func(p []byte) error {
		if !done && at < off+int64(len(p)) {
			k := at - off
			if _, err := w.Write(p[:k]); err != nil {
				return err
			}
			if _, err := w.Write(c.sp.section); err != nil {
				return err
			}
			done, off, p = true, at, p[k:]
		}
		off += int64(len(p))
		_, err := w.Write(p)
		return err
	})
	if err == nil && !done { // at the end
		_, err = w.Write(c.sp.section)
	}
	return c.finish(w, bw, err)
}

// finish ends the re-encoded body, unless err.
func (c *codec) finish(w encoder, bw *bufio.Writer, err error) error {
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		c.werr = err
		c.sp.inserted = false
	}
	return err
}

func (c *codec) openDecoder(br *bufio.Reader) error {
	switch c.coding {
	case codingGzip:
		z := gzipReaders.Get().(*gzip.Reader)
		c.dec = z
		if err := z.Reset(br); err != nil {
			return err
		}
		// Members are followed by hand (nextGzipMember) so that trailing
		// garbage ends the body instead of failing it.
		z.Multistream(false)
	case codingDeflate:
		// HTTP's deflate is zlib (RFC 9110 §8.4.1.2), but some servers send
		// raw DEFLATE; a zlib header is recognisable (RFC 1950 §2.2).
		head, err := br.Peek(2)
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
				return r.(flate.Resetter).Reset(br, nil)
			}
			return r.(zlib.Resetter).Reset(br, nil)
		}
		if c.rawDeflate {
			c.dec = flate.NewReader(br)
			return nil
		}
		r, err := zlib.NewReader(br)
		if err != nil {
			return err
		}
		c.dec = r
	case codingBrotli:
		head, err := br.Peek(1)
		if len(head) < 1 {
			return err
		}
		if brotliWindowBits(head[0]) > maxBrotliWindowBits {
			return errBigWindow
		}
		r := brReaders.Get().(*brotli.Reader)
		c.dec = r
		return r.Reset(br)
	case codingZstd:
		d := zstdReaders.Get().(*zstd.Decoder)
		c.dec = d
		return d.Reset(br)
	}
	return nil
}

// brotliWindowBits reads WBITS from the first byte of a brotli stream (RFC
// 7932 §9.1); 31 for the large-window extension, which HTTP does not use.
func brotliWindowBits(b byte) int {
	switch {
	case b&1 == 0:
		return 16
	case b>>1&7 != 0:
		return 17 + int(b>>1&7)
	case b>>4&7 == 1:
		return 31
	case b>>4&7 != 0:
		return 8 + int(b>>4&7)
	}
	return 17
}

// nextGzipMember starts decoding the next member of a multi-member gzip
// body, if one follows.
func (c *codec) nextGzipMember(br *bufio.Reader) (bool, error) {
	head, _ := br.Peek(2)
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return false, nil
	}
	z := c.dec.(*gzip.Reader)
	if err := z.Reset(br); err != nil {
		return false, err
	}
	z.Multistream(false)
	return true, nil
}

func (c *codec) getEncoder(dst io.Writer) encoder {
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
	w.Reset(dst)
	return w
}

func (c *codec) putEncoder(w encoder) {
	w.Reset(io.Discard)
	switch c.coding {
	case codingGzip:
		gzipWriters.Put(w)
	case codingDeflate:
		if c.rawDeflate {
			flateWriters.Put(w)
		} else {
			zlibWriters.Put(w)
		}
	case codingBrotli:
		brWriters.Put(w)
	case codingZstd:
		zstdWriters.Put(w)
	}
}

// putDecoder returns the decoder to its pool.
func (c *codec) putDecoder() {
	if c.dec == nil {
		return
	}
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
	c.dec = nil
}

// release ends the coroutine and returns everything to its pool.
func (c *codec) release() {
	c.endFirstPass()
	c.raw.release()
	c.br.Reset(nil)
	*c = codec{buf: c.buf, br: c.br, raw: rawBody{chunks: c.raw.chunks[:0]}}
	codecPool.Put(c)
}
