//! Moving boxes of elements between C-order buffers: the one hot loop every stage shares.

use crate::grid::DimGrid;
use crate::region::Region;

/// Byte strides of a C-order array of `shape` with `item`-byte elements.
fn strides(shape: &[u64], item: usize) -> Vec<usize> {
    let mut out = vec![item; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        out[d] = out[d + 1] * shape[d + 1] as usize;
    }
    out
}

/// Copies the box of `copy_shape` elements at `src_offset` of the C-order buffer `src` (of shape
/// `src_shape`) to `dst_offset` of `dst` (of shape `dst_shape`). Trailing dimensions that are
/// whole in both buffers are merged, so the inner loop is one `memcpy` per contiguous run.
///
/// # Panics
/// If the box does not fit either buffer; callers derive all shapes from one plan.
#[allow(clippy::too_many_arguments)]
pub fn copy_box(
    src: &[u8],
    src_shape: &[u64],
    src_offset: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_offset: &[u64],
    copy_shape: &[u64],
    item: usize,
) {
    let src_start = byte_offset(src_shape, src_offset, item);
    let dst_start = byte_offset(dst_shape, dst_offset, item);
    copy_box_at(
        src, src_shape, src_start, dst, dst_shape, dst_start, copy_shape, item,
    );
}

/// Byte position of element `index` in a C-order buffer of `shape`.
pub fn byte_offset(shape: &[u64], index: &[u64], item: usize) -> usize {
    crate::region::ravel(index, shape) as usize * item
}

/// Like [`copy_box`], with the box's first element given as a byte position in each buffer.
/// `src` may then be only the span of a larger array that the box touches, e.g. the bytes
/// read from the middle of a chunk file.
#[allow(clippy::too_many_arguments)]
pub fn copy_box_at(
    src: &[u8],
    src_shape: &[u64],
    src_start: usize,
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: usize,
    copy_shape: &[u64],
    item: usize,
) {
    let ndim = copy_shape.len();
    debug_assert!(src_shape.len() == ndim && dst_shape.len() == ndim);
    if copy_shape.contains(&0) {
        return;
    }
    if ndim == 0 {
        dst[..item].copy_from_slice(&src[..item]);
        return;
    }
    let src_strides = strides(src_shape, item);
    let dst_strides = strides(dst_shape, item);
    // Merge trailing dimensions that are copied whole on both sides into one contiguous run.
    let mut inner = ndim - 1;
    let mut run = copy_shape[inner] as usize * item;
    while inner > 0
        && copy_shape[inner] == src_shape[inner]
        && copy_shape[inner] == dst_shape[inner]
    {
        inner -= 1;
        run *= copy_shape[inner] as usize;
    }
    let mut src_pos = src_start;
    let mut dst_pos = dst_start;
    if inner == 0 {
        dst[dst_pos..dst_pos + run].copy_from_slice(&src[src_pos..src_pos + run]);
        return;
    }
    // Odometer over the outer dimensions 0..inner.
    let mut index = vec![0u64; inner];
    loop {
        dst[dst_pos..dst_pos + run].copy_from_slice(&src[src_pos..src_pos + run]);
        let mut d = inner;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            src_pos += src_strides[d];
            dst_pos += dst_strides[d];
            if index[d] < copy_shape[d] {
                break;
            }
            src_pos -= src_strides[d] * copy_shape[d] as usize;
            dst_pos -= dst_strides[d] * copy_shape[d] as usize;
            index[d] = 0;
        }
    }
}

/// Fills `buf` with repetitions of one element's bytes (a fill value).
pub fn fill_elements(buf: &mut [u8], element: &[u8]) {
    if element.iter().all(|&b| b == 0) {
        buf.fill(0);
    } else if !element.is_empty() {
        for chunk in buf.chunks_exact_mut(element.len()) {
            chunk.copy_from_slice(element);
        }
    }
}

/// Byte length of a C-order buffer of `shape` with `item`-byte elements, checked against
/// overflow of the address space.
pub fn buffer_len(shape: &[u64], item: usize) -> Option<usize> {
    shape
        .iter()
        .try_fold(item as u64, |acc, &n| acc.checked_mul(n))
        .and_then(|n| usize::try_from(n).ok())
}

/// The contiguous byte ranges that the box of `box_shape` elements at `offset` occupies in a
/// C-order buffer of `shape`, in order: one range per index of the leading dimensions, each
/// spanning the trailing dimensions that the box covers whole plus the first it does not.
pub fn contiguous_runs(
    shape: &[u64],
    offset: &[u64],
    box_shape: &[u64],
    item: usize,
) -> Vec<std::ops::Range<usize>> {
    let ndim = shape.len();
    if box_shape.contains(&0) {
        return Vec::new();
    }
    // Dimensions split.. form one run: the box is whole in every dimension after `split`.
    let mut split = ndim.saturating_sub(1);
    while split > 0 && box_shape[split] == shape[split] {
        split -= 1;
    }
    let run_len = box_shape[split..]
        .iter()
        .map(|&n| n as usize)
        .product::<usize>()
        * item;
    let outer = &box_shape[..split];
    let mut runs = Vec::with_capacity(outer.iter().product::<u64>() as usize);
    let mut index = offset.to_vec();
    loop {
        let start = byte_offset(shape, &index, item);
        runs.push(start..start + run_len);
        let mut d = outer.len();
        loop {
            if d == 0 {
                return runs;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < offset[d] + outer[d] {
                break;
            }
            index[d] = offset[d];
        }
    }
}

/// Splits `region` along its first dimension into at most `parts` slabs whose bounds are chunk
/// bounds of `first` (the grid of that dimension), with about as many chunks in each. A slab of
/// a C-order buffer is one contiguous byte range, so slabs can be filled from several threads
/// without copies; a region that is a union of whole chunks splits into unions of whole chunks.
pub fn slabs(region: &Region, first: &DimGrid, parts: usize) -> Vec<Region> {
    if region.ndim() == 0 || parts <= 1 || region.is_empty() {
        return vec![region.clone()];
    }
    let (lo, hi) = (region.start[0], region.end(0));
    let chunks = first.chunks_overlapping(lo..hi);
    let n = chunks.end - chunks.start;
    let k = (parts as u64).min(n).max(1);
    (0..k)
        .map(|i| {
            let (a, b) = (chunks.start + n * i / k, chunks.start + n * (i + 1) / k);
            let start = first.chunk_range(a).start.max(lo);
            let end = first.chunk_range(b - 1).end.min(hi);
            let mut slab = region.clone();
            slab.start[0] = start;
            slab.shape[0] = end - start;
            slab
        })
        .collect()
}

/// The byte ranges of `buf` (a C-order buffer of the region `slabs` split) that hold each of
/// `slabs`, in order; `None` when their sizes do not add up to `buf`'s length.
pub fn split_slabs_mut<'a>(
    mut buf: &'a mut [u8],
    slabs: &[Region],
    item: usize,
) -> Option<Vec<&'a mut [u8]>> {
    let mut out = Vec::with_capacity(slabs.len());
    for slab in slabs {
        let len = buffer_len(&slab.shape, item)?;
        if len > buf.len() {
            return None;
        }
        let (head, rest) = std::mem::take(&mut buf).split_at_mut(len);
        out.push(head);
        buf = rest;
    }
    buf.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_runs_cover_the_box_in_order() {
        let shape = [4u64, 5, 6];
        for (offset, bx) in [
            ([0u64, 0, 0], [4u64, 5, 6]),
            ([1, 0, 0], [2, 5, 6]),
            ([1, 2, 0], [2, 3, 6]),
            ([1, 2, 3], [2, 3, 2]),
            ([0, 4, 5], [1, 1, 1]),
        ] {
            let runs = contiguous_runs(&shape, &offset, &bx, 2);
            let mut want = Vec::new();
            for idx in crate::region::indices(&bx) {
                let at: Vec<u64> = idx.iter().zip(&offset).map(|(i, o)| i + o).collect();
                let b = byte_offset(&shape, &at, 2);
                want.extend([b, b + 1]);
            }
            let got: Vec<usize> = runs.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(got, want, "{offset:?} {bx:?}");
            assert!(runs.windows(2).all(|w| w[0].end < w[1].start));
        }
        assert_eq!(contiguous_runs(&[], &[], &[], 4), vec![0..4]);
    }

    fn naive(
        src: &[u8],
        ss: &[u64],
        so: &[u64],
        dst: &mut [u8],
        ds: &[u64],
        dof: &[u64],
        cs: &[u64],
    ) {
        for idx in crate::region::indices(cs) {
            let s: Vec<u64> = idx.iter().zip(so).map(|(a, b)| a + b).collect();
            let d: Vec<u64> = idx.iter().zip(dof).map(|(a, b)| a + b).collect();
            dst[crate::region::ravel(&d, ds) as usize] = src[crate::region::ravel(&s, ss) as usize];
        }
    }

    #[test]
    fn copy_matches_naive() {
        let ss = [4u64, 5, 6];
        let src: Vec<u8> = (0..120).map(|i| i as u8).collect();
        for (so, cs, ds, dof) in [
            ([1u64, 2, 0], [2u64, 3, 6], [3u64, 3, 6], [1u64, 0, 0]),
            ([0, 0, 0], [4, 5, 6], [4, 5, 6], [0, 0, 0]),
            ([3, 4, 5], [1, 1, 1], [2, 2, 2], [1, 1, 1]),
            ([0, 1, 2], [4, 4, 3], [5, 4, 4], [1, 0, 1]),
        ] {
            let n = buffer_len(&ds, 1).unwrap();
            let mut a = vec![0u8; n];
            let mut b = vec![0u8; n];
            copy_box(&src, &ss, &so, &mut a, &ds, &dof, &cs, 1);
            naive(&src, &ss, &so, &mut b, &ds, &dof, &cs);
            assert_eq!(a, b, "{so:?} {cs:?}");
        }
    }

    #[test]
    fn copy_zero_d_and_empty() {
        let mut d = [0u8; 4];
        copy_box(&[1, 2, 3, 4], &[], &[], &mut d, &[], &[], &[], 4);
        assert_eq!(d, [1, 2, 3, 4]);
        copy_box(&[], &[0], &[0], &mut [], &[0], &[0], &[0], 4);
    }

    #[test]
    fn fill_repeats_pattern() {
        let mut b = [0u8; 6];
        fill_elements(&mut b, &[1, 2]);
        assert_eq!(b, [1, 2, 1, 2, 1, 2]);
    }
}
