/* Whole-buffer zlib compression with ISA-L's igzip, for rechunker's deflate level 1.
 *
 * A shim instead of Rust bindings: `struct isal_zstream` is large and its layout belongs to the
 * installed header, so C code compiled against that header fills it. */
#include <isa-l/igzip_lib.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the working buffer that `rechunker_isal_zlib_compress` needs. */
size_t rechunker_isal_level_buffer_size(void) { return ISAL_DEF_LVL1_DEFAULT; }

/* Compresses `in` into one zlib stream (header, deflate at ISA-L level 1, Adler-32) in `out`.
 * Returns 0 and sets `*written`, 1 if `out` is too small, or ISA-L's negative error code. */
int rechunker_isal_zlib_compress(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                                 uint8_t *level_buf, size_t level_buf_len, size_t *written) {
    if (in_len > UINT32_MAX || out_cap > UINT32_MAX || level_buf_len > UINT32_MAX)
        return ISAL_INVALID_OPERATION;
    struct isal_zstream stream;
    isal_deflate_stateless_init(&stream);
    stream.next_in = (uint8_t *)in;
    stream.avail_in = (uint32_t)in_len;
    stream.next_out = out;
    stream.avail_out = (uint32_t)out_cap;
    stream.level = 1;
    stream.level_buf = level_buf;
    stream.level_buf_size = (uint32_t)level_buf_len;
    stream.gzip_flag = IGZIP_ZLIB;
    stream.end_of_stream = 1;
    stream.flush = NO_FLUSH;
    int rc = isal_deflate_stateless(&stream);
    if (rc == STATELESS_OVERFLOW)
        return 1;
    if (rc != COMP_OK)
        return rc;
    *written = stream.total_out;
    return 0;
}
