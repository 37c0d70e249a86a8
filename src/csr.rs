//! Compressed sparse rows: many short lists kept as one flat vector and its offsets, so a
//! row is one slice and reading it allocates nothing. The city's tables (cells of a
//! community, workers of a cell ...), the grid's neighbour graph and the buckets of the
//! spatial index while it is built all use this one type.

/// Rows of items: row `i` is `items[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone)]
pub(crate) struct Csr<T> {
    offsets: Vec<u32>,
    items: Vec<T>,
}

impl<T> Default for Csr<T> {
    fn default() -> Self {
        Csr {
            offsets: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T: Copy> Csr<T> {
    /// Rows from two passes over `each`: count, then fill. `each(emit)` must emit the same
    /// `(row, item)` pairs, rows below `rows`, both times; each row keeps the order in
    /// which its items were emitted. `None` if there are more than `limit` items (offsets
    /// are `u32`, so never more than `u32::MAX`).
    pub(crate) fn build(
        rows: usize,
        limit: u64,
        each: impl Fn(&mut dyn FnMut(usize, T)),
    ) -> Option<Csr<T>> {
        let mut offsets = vec![0u32; rows + 1];
        let mut total = 0u64;
        let mut first: Option<T> = None;
        each(&mut |row, item| {
            offsets[row + 1] = offsets[row + 1].saturating_add(1);
            total += 1;
            first.get_or_insert(item);
        });
        if total > limit.min(u64::from(u32::MAX)) {
            return None;
        }
        for i in 0..rows {
            offsets[i + 1] += offsets[i];
        }
        // Any item fills the vector before its slots are written: no `Default` needed.
        let Some(first) = first else {
            return Some(Csr {
                offsets,
                items: Vec::new(),
            });
        };
        let mut fill = offsets[..rows].to_vec();
        let mut items = vec![first; total as usize];
        each(&mut |row, item| {
            items[fill[row] as usize] = item;
            fill[row] += 1;
        });
        Some(Csr { offsets, items })
    }

    /// Rows from `(row, item)` pairs, rows below `rows`; each row keeps the pairs' relative
    /// order. The pairs come from lists held in memory, far fewer than the `u32::MAX` items
    /// the offsets can address; more would give an empty table.
    pub(crate) fn from_pairs(rows: usize, pairs: &[(usize, T)]) -> Csr<T> {
        Csr::build(rows, u64::MAX, |emit| {
            for &(r, t) in pairs {
                emit(r, t);
            }
        })
        .unwrap_or_default()
    }

    /// Row `i`, empty if out of range.
    #[inline]
    pub(crate) fn row(&self, i: usize) -> &[T] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.items.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Number of items in all rows.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Length of the longest row (0 for none).
    pub(crate) fn max_row_len(&self) -> usize {
        self.offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Where row `i` starts among the items (0 past the last row).
    #[inline]
    pub(crate) fn start(&self, i: usize) -> u32 {
        self.offsets.get(i).copied().unwrap_or(0)
    }

    /// The item at `index` in the items of every row, one after another.
    #[inline]
    pub(crate) fn item(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.items.capacity() * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_their_pairs_in_order() {
        let csr = Csr::from_pairs(4, &[(2, 'a'), (0, 'b'), (2, 'c'), (3, 'd')]);
        assert_eq!(csr.row(0), &['b']);
        assert_eq!(csr.row(1), &[] as &[char]);
        assert_eq!(csr.row(2), &['a', 'c']);
        assert_eq!(csr.row(3), &['d']);
        assert_eq!(csr.row(4), &[] as &[char]);
        assert_eq!((csr.rows(), csr.len(), csr.max_row_len()), (4, 4, 2));
        let starts: Vec<u32> = (0..6).map(|i| csr.start(i)).collect();
        assert_eq!(starts, [0, 1, 1, 3, 4, 0]);
        assert_eq!(
            (csr.item(1), csr.item(3), csr.item(4)),
            (Some(&'a'), Some(&'d'), None)
        );
    }

    #[test]
    fn empty_tables_have_empty_rows() {
        let none: Csr<u8> = Csr::from_pairs(3, &[]);
        assert_eq!((none.rows(), none.len(), none.max_row_len()), (3, 0, 0));
        assert!(none.row(0).is_empty() && none.row(3).is_empty());
        let default: Csr<u8> = Csr::default();
        assert_eq!((default.rows(), default.len()), (0, 0));
        assert!(default.row(0).is_empty());
    }

    #[test]
    fn build_refuses_more_than_its_limit() {
        let emit_five = |emit: &mut dyn FnMut(usize, u32)| {
            for k in 0..5u32 {
                emit(k as usize % 2, k);
            }
        };
        assert!(Csr::build(2, 4, emit_five).is_none());
        let csr = Csr::build(2, 5, emit_five).unwrap();
        assert_eq!(csr.row(0), &[0, 2, 4]);
        assert_eq!(csr.row(1), &[1, 3]);
    }
}
