//! Decompression bombs: tiny Zarr v2 and v3 arrays (4 x 4 float32, 64 bytes a chunk) whose chunk
//! inflates far beyond that, for every codec the adapter decodes. Each read must fail with the
//! clear "decodes to more than the N bytes its shape holds" error, naming array, chunk and store.

use rechunker_core::{DatasetSource, Region};
use rechunker_zarr::ZarrSource;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

const CHUNK_BYTES: usize = 4 * 4 * 4;
/// What each bomb inflates to: small enough to build fast, 2^18 times the chunk.
const BOMB: u64 = 16 << 20;

/// A zstd frame of RLE blocks (128 KiB of one byte each, 4 bytes apiece) that decodes to
/// `total` bytes; `content_size` is what its header claims (`None`: no content size field).
fn zstd_rle(total: u64, content_size: Option<u64>) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    match content_size {
        // FCS field of 8 bytes, not single segment: a window descriptor of 128 KiB follows.
        Some(size) => {
            out.push(0b1100_0000);
            out.push(7 << 3);
            out.extend_from_slice(&size.to_le_bytes());
        }
        None => {
            out.push(0);
            out.push(7 << 3);
        }
    }
    const BLOCK: u64 = 128 << 10;
    let blocks = total.div_ceil(BLOCK);
    for i in 0..blocks {
        let size = BLOCK.min(total - i * BLOCK);
        let last = u64::from(i + 1 == blocks);
        let header = (size << 3) | (1 << 1) | last;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0x42);
    }
    out
}

/// Raw deflate data (no final block) that inflates to `mib` MiB of zeros: one MiB compressed
/// with a full flush (so it stands alone), repeated.
fn deflate_mib(mib: u64) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut segment = Vec::with_capacity(8 << 10);
    c.compress_vec(&zeros, &mut segment, flate2::FlushCompress::Full)
        .unwrap();
    assert_eq!(c.total_in(), 1 << 20);
    let mut out = Vec::with_capacity(segment.len() * mib as usize + 16);
    for _ in 0..mib {
        out.extend_from_slice(&segment);
    }
    // An empty final block with fixed Huffman codes.
    out.extend_from_slice(&[0x03, 0x00]);
    out
}

fn gzip_bomb(mib: u64) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(deflate_mib(mib));
    // CRC32 and size are never reached by a bounded decoder.
    out.extend_from_slice(&[0; 8]);
    out
}

fn zlib_bomb(mib: u64) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    out.extend(deflate_mib(mib));
    out.extend_from_slice(&[0; 4]);
    out
}

/// A real blosc buffer of `total` zero bytes (lz4, shuffled 4-byte items).
fn blosc_zeros(total: usize) -> Vec<u8> {
    use zarrs::array::codec::{
        blosc_compress_bytes, BloscCompressionLevel, BloscCompressor, BloscShuffleMode,
    };
    blosc_compress_bytes(
        &vec![0u8; total],
        BloscCompressionLevel::try_from(5u8).unwrap(),
        BloscShuffleMode::Shuffle,
        4,
        BloscCompressor::LZ4,
        0,
        1,
    )
    .unwrap()
}

/// A blosc buffer for one honest 64-byte chunk whose header claims `nbytes`.
fn blosc_forged(nbytes: u32) -> Vec<u8> {
    let mut b = blosc_zeros(CHUNK_BYTES);
    b[4..8].copy_from_slice(&nbytes.to_le_bytes());
    b
}

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn write_json(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// A v2 array `v` of 4 x 4 float32 in one chunk, compressed with `compressor`, whose chunk `0.0`
/// holds `chunk`.
fn v2_array(root: &Path, compressor: Value, chunk: &[u8]) {
    write_json(&root.join(".zgroup"), &json!({"zarr_format": 2}));
    write_json(
        &root.join("v/.zarray"),
        &json!({
            "zarr_format": 2, "shape": [4, 4], "chunks": [4, 4], "dtype": "<f4",
            "compressor": compressor, "fill_value": 0.0, "order": "C", "filters": null,
        }),
    );
    write_json(
        &root.join("v/.zattrs"),
        &json!({"_ARRAY_DIMENSIONS": ["y", "x"]}),
    );
    std::fs::write(root.join("v/0.0"), chunk).unwrap();
}

/// The same in v3, with `codecs` after `bytes`; `shard` puts the chunk in a shard of 2 x 2
/// inner chunks (all four pointing at the same bytes).
fn v3_array(root: &Path, codecs: Vec<Value>, chunk: &[u8], shard: bool) {
    write_json(
        &root.join("zarr.json"),
        &json!({"zarr_format": 3, "node_type": "group", "attributes": {}}),
    );
    let mut chain = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    chain.extend(codecs);
    let chain = if shard {
        vec![json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2, 2],
            "codecs": chain,
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end",
        }})]
    } else {
        chain
    };
    write_json(
        &root.join("v/zarr.json"),
        &json!({
            "zarr_format": 3, "node_type": "array", "shape": [4, 4], "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 4]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0.0, "codecs": chain, "attributes": {}, "dimension_names": ["y", "x"],
        }),
    );
    let bytes = if shard {
        let mut index = Vec::new();
        for _ in 0..4 {
            index.extend_from_slice(&0u64.to_le_bytes());
            index.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        }
        let crc = crc32c(&index);
        let mut shard = chunk.to_vec();
        shard.extend_from_slice(&index);
        shard.extend_from_slice(&crc.to_le_bytes());
        shard
    } else {
        chunk.to_vec()
    };
    let path = root.join("v/c/0/0");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
}

/// Reads the whole array, and also a part of it (zarrs' partial decoding path); both must fail
/// with the clear error.
fn assert_bomb(root: &Path, key: &str, limit: usize, what: &str) {
    let uri = root.display().to_string();
    let source = ZarrSource::open(&uri).unwrap();
    let array = source.open_array("v").unwrap();
    for region in [Region::full(&[4, 4]), Region::new(vec![1, 1], vec![2, 3])] {
        let mut out = vec![0u8; region.num_elements() as usize * 4];
        let e = array
            .read_region(&region, &mut out)
            .unwrap_err()
            .to_string();
        let expected = format!(
            "`v` {what} {key} in {uri} decodes to more than the {limit} bytes its shape holds: the chunk is corrupt or hostile"
        );
        assert!(e.contains(&expected), "{region}:\n{e}\nwanted:\n{expected}");
    }
}

fn honest_round_trip(root: &Path) {
    let source = ZarrSource::open(root.to_str().unwrap()).unwrap();
    let array = source.open_array("v").unwrap();
    let mut out = vec![1u8; CHUNK_BYTES];
    array.read_region(&Region::full(&[4, 4]), &mut out).unwrap();
    assert!(out.iter().all(|&b| b == 0x42) || out.iter().all(|&b| b == 0));
}

/// The bombs of each codec, as (v2 compressor, v3 codec, chunk bytes).
fn bombs() -> Vec<(&'static str, Value, Value, Vec<u8>)> {
    let mib = BOMB >> 20;
    vec![
        (
            "zstd with a content size",
            json!({"id": "zstd", "level": 3}),
            json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}}),
            zstd_rle(BOMB, Some(BOMB)),
        ),
        (
            "zstd without a content size",
            json!({"id": "zstd", "level": 3}),
            json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}}),
            zstd_rle(BOMB, None),
        ),
        (
            "zstd with a lying content size",
            json!({"id": "zstd", "level": 3}),
            json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}}),
            zstd_rle(BOMB, Some(CHUNK_BYTES as u64)),
        ),
        (
            "gzip",
            json!({"id": "gzip", "level": 1}),
            json!({"name": "gzip", "configuration": {"level": 1}}),
            gzip_bomb(mib),
        ),
        (
            "zlib",
            json!({"id": "zlib", "level": 1}),
            json!({"name": "numcodecs.zlib", "configuration": {"level": 1}}),
            zlib_bomb(mib),
        ),
        (
            "blosc",
            json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}),
            json!({"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 4, "blocksize": 0}}),
            blosc_zeros(BOMB as usize),
        ),
        (
            "blosc with a forged header",
            json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}),
            json!({"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 4, "blocksize": 0}}),
            blosc_forged(1 << 30),
        ),
    ]
}

#[test]
fn crafted_bombs_really_inflate() {
    // The crafted streams are valid: each decodes (unbounded) to the size it claims.
    assert_eq!(
        zstd::decode_all(&zstd_rle(BOMB, None)[..]).unwrap().len() as u64,
        BOMB
    );
    assert_eq!(zstd_rle(BOMB, None).len(), 6 + 4 * (BOMB as usize >> 17));
    let mut inflated = Vec::new();
    let deflate = deflate_mib(3);
    std::io::Read::read_to_end(
        &mut flate2::read::DeflateDecoder::new(&deflate[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated.len(), 3 << 20);
    assert!(inflated.iter().all(|&b| b == 0));
    assert!(deflate.len() < 3 * 2048, "{}", deflate.len());
    let blosc = blosc_zeros(BOMB as usize);
    assert!(blosc.len() < 1 << 20, "{}", blosc.len());
}

#[test]
fn v2_bombs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, compressor, _, chunk)) in bombs().into_iter().enumerate() {
        let root = dir.path().join(format!("b{i}.zarr"));
        v2_array(&root, compressor, &chunk);
        eprintln!("v2 {name}: {} bytes", chunk.len());
        assert_bomb(&root, "v/0.0", CHUNK_BYTES, "chunk");
    }
}

#[test]
fn v3_bombs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, _, codec, chunk)) in bombs().into_iter().enumerate() {
        eprintln!("v3 {name}: {} bytes", chunk.len());
        let root = dir.path().join(format!("b{i}.zarr"));
        v3_array(&root, vec![codec.clone()], &chunk, false);
        assert_bomb(&root, "v/c/0/0", CHUNK_BYTES, "chunk");
        // Behind a checksum: the compressor still decodes into the chunk's size.
        let root = dir.path().join(format!("c{i}.zarr"));
        let mut checked = chunk.clone();
        checked.extend_from_slice(&crc32c(&chunk).to_le_bytes());
        v3_array(
            &root,
            vec![codec.clone(), json!({"name": "crc32c"})],
            &checked,
            false,
        );
        assert_bomb(&root, "v/c/0/0", CHUNK_BYTES, "chunk");
        // Inside a shard: every inner chunk (2 x 2 float32) is capped at its own 16 bytes.
        let root = dir.path().join(format!("s{i}.zarr"));
        v3_array(&root, vec![codec], &chunk, true);
        assert_bomb(&root, "v/c/0/0", 16, "an inner chunk of shard");
    }
}

#[test]
fn honest_crafted_chunks_still_read() {
    // The same constructions at the chunk's exact size decode fine: the caps are not too tight.
    let dir = tempfile::tempdir().unwrap();
    let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}});
    for (i, chunk) in [
        zstd_rle(CHUNK_BYTES as u64, Some(CHUNK_BYTES as u64)),
        zstd_rle(CHUNK_BYTES as u64, None),
    ]
    .iter()
    .enumerate()
    {
        let root = dir.path().join(format!("z{i}.zarr"));
        v3_array(&root, vec![zstd.clone()], chunk, false);
        honest_round_trip(&root);
        let root = dir.path().join(format!("y{i}.zarr"));
        v2_array(&root, json!({"id": "zstd", "level": 3}), chunk);
        honest_round_trip(&root);
    }
    let root = dir.path().join("blosc.zarr");
    v2_array(
        &root,
        json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}),
        &blosc_zeros(CHUNK_BYTES),
    );
    honest_round_trip(&root);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&[0u8; CHUNK_BYTES]).unwrap();
    let root = dir.path().join("gzip.zarr");
    v2_array(
        &root,
        json!({"id": "gzip", "level": 1}),
        &gz.finish().unwrap(),
    );
    honest_round_trip(&root);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&[0u8; CHUNK_BYTES]).unwrap();
    let root = dir.path().join("zlib.zarr");
    v2_array(
        &root,
        json!({"id": "zlib", "level": 1}),
        &z.finish().unwrap(),
    );
    honest_round_trip(&root);
}
