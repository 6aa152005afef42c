//! Hyperslabs: an N-d box of an array given by its start and shape.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A box `[start, start + shape)` in element coordinates. A 0-d region (empty vectors) is the one
/// element of a scalar array.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    pub start: Vec<u64>,
    pub shape: Vec<u64>,
}

impl Region {
    pub fn new(start: Vec<u64>, shape: Vec<u64>) -> Self {
        debug_assert_eq!(start.len(), shape.len());
        Region { start, shape }
    }

    /// The whole of an array of `shape`.
    pub fn full(shape: &[u64]) -> Self {
        Region::new(vec![0; shape.len()], shape.to_vec())
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a 0-d region).
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.num_elements() == 0
    }

    pub fn end(&self, dim: usize) -> u64 {
        self.start[dim] + self.shape[dim]
    }

    /// The overlap of two regions, if any element is in both.
    pub fn intersect(&self, other: &Region) -> Option<Region> {
        let mut start = Vec::with_capacity(self.ndim());
        let mut shape = Vec::with_capacity(self.ndim());
        for d in 0..self.ndim() {
            let lo = self.start[d].max(other.start[d]);
            let hi = self.end(d).min(other.end(d));
            if hi <= lo {
                return None;
            }
            start.push(lo);
            shape.push(hi - lo);
        }
        Some(Region::new(start, shape))
    }

    pub fn contains(&self, other: &Region) -> bool {
        (0..self.ndim()).all(|d| other.start[d] >= self.start[d] && other.end(d) <= self.end(d))
    }

    /// This region's start relative to `outer`'s start (`self` must lie inside `outer`).
    pub fn offset_in(&self, outer: &Region) -> Vec<u64> {
        self.start
            .iter()
            .zip(&outer.start)
            .map(|(a, b)| a - b)
            .collect()
    }
}

impl fmt::Display for Region {
    /// Numpy-style slice notation, e.g. `[0:24, 48:72]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for d in 0..self.ndim() {
            if d > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}:{}", self.start[d], self.end(d))?;
        }
        f.write_str("]")
    }
}

/// Iterates over all multi-indices of a box `shape` in C order. Yields one empty index for 0-d.
pub fn indices(shape: &[u64]) -> impl Iterator<Item = Vec<u64>> + '_ {
    let total: u64 = shape.iter().product();
    let mut current = vec![0u64; shape.len()];
    let mut first = true;
    (0..total).map(move |_| {
        if !first {
            for d in (0..shape.len()).rev() {
                current[d] += 1;
                if current[d] < shape[d] {
                    break;
                }
                current[d] = 0;
            }
        }
        first = false;
        current.clone()
    })
}

/// Converts a C-order linear index into a multi-index of `shape`.
pub fn unravel(mut linear: u64, shape: &[u64]) -> Vec<u64> {
    let mut out = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        let n = shape[d].max(1);
        out[d] = linear % n;
        linear /= n;
    }
    out
}

/// Converts a multi-index into its C-order linear index in `shape`.
pub fn ravel(index: &[u64], shape: &[u64]) -> u64 {
    index.iter().zip(shape).fold(0, |acc, (i, n)| acc * n + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersect_and_display() {
        let a = Region::new(vec![0, 10], vec![5, 10]);
        let b = Region::new(vec![3, 15], vec![10, 10]);
        let c = a.intersect(&b).unwrap();
        assert_eq!(c, Region::new(vec![3, 15], vec![2, 5]));
        assert_eq!(c.to_string(), "[3:5, 15:20]");
        assert!(a
            .intersect(&Region::new(vec![5, 0], vec![1, 100]))
            .is_none());
        assert_eq!(Region::full(&[]).num_elements(), 1);
    }

    #[test]
    fn index_iteration_is_c_order() {
        let all: Vec<_> = indices(&[2, 3]).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[1], vec![0, 1]);
        assert_eq!(all[3], vec![1, 0]);
        for (i, idx) in all.iter().enumerate() {
            assert_eq!(ravel(idx, &[2, 3]), i as u64);
            assert_eq!(&unravel(i as u64, &[2, 3]), idx);
        }
        assert_eq!(indices(&[]).count(), 1);
        assert_eq!(indices(&[3, 0]).count(), 0);
    }
}
