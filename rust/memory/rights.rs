// SPDX-License-Identifier: GPL-2.0

//! Page rights, in the spirit of the 3DO Portfolio OS: every page of an allocation has at most
//! one owner and a set of other writers, kept as sorted runs of pages with the same rights.
//!
//! This is the data; who may change it, and how, is the policy's (`policy/access.rs`).

use kernel::prelude::*;

/// The rights on a run of pages.
pub(crate) struct PageRights<P> {
    /// The owner; `None` once the owner let go (its handle went away).
    pub(crate) owner: Option<P>,
    /// Processes besides the owner that may write.
    pub(crate) writers: KVec<P>,
    /// The owner that let go of ownerless pages: its pool gets them back when they are freed.
    pub(crate) former: Option<P>,
}

impl<P: PartialEq> PageRights<P> {
    /// Whether `p` may write: the owner always may, a writer while it stays one.
    pub(crate) fn may_write(&self, p: &P) -> bool {
        self.owner.as_ref() == Some(p) || self.writers.contains(p)
    }

    /// Whether `p` owns the pages.
    pub(crate) fn owned_by(&self, p: &P) -> bool {
        self.owner.as_ref() == Some(p)
    }

    fn same(&self, other: &Self) -> bool {
        self.owner == other.owner
            && self.former == other.former
            && self.writers.len() == other.writers.len()
            && self.writers.iter().all(|w| other.writers.contains(w))
    }
}

/// A run of pages `[start, end)` with the same rights.
struct Run<P> {
    start: u64,
    end: u64,
    rights: PageRights<P>,
}

/// Runs an allocation's pages may be split into: a change that needs more fails with `ENOSPC`.
/// Each run costs memory and time on every fault and change of the allocation.
pub(crate) const MAX_RUNS: usize = 4096;

/// The rights of every page of an allocation, as sorted runs that cover `[0, npages)`.
///
/// # Invariants
///
/// The runs are sorted, non-empty, adjacent, cover `[0, npages)` exactly, and are at most
/// [`MAX_RUNS`] but while a change is being made.
pub(crate) struct Runs<P> {
    runs: KVVec<Run<P>>,
}

impl<P: Clone + PartialEq> Runs<P> {
    /// `npages` pages, all owned by `owner` (or by nobody).
    pub(crate) fn new(npages: u64, owner: Option<P>) -> Result<Self> {
        let mut runs = KVVec::new();
        runs.push(
            Run {
                start: 0,
                end: npages,
                rights: PageRights {
                    owner,
                    writers: KVec::new(),
                    former: None,
                },
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        // INVARIANT: one run covering everything.
        Ok(Self { runs })
    }

    /// The runs overlapping `[start, end)`, clipped to it.
    pub(crate) fn in_range(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, &PageRights<P>)> {
        // The runs are sorted and adjacent: the first that ends after `start` begins them (a
        // fault looks up one page of up to `MAX_RUNS` runs).
        let first = self.runs.partition_point(|r| r.end <= start);
        self.runs[first..]
            .iter()
            .take_while(move |r| r.start < end)
            .map(move |r| (r.start.max(start), r.end.min(end), &r.rights))
    }

    /// The rights of page `page`.
    pub(crate) fn at(&self, page: u64) -> Option<&PageRights<P>> {
        self.in_range(page, page + 1).next().map(|(_, _, r)| r)
    }

    /// Whether every page of `[start, end)` satisfies `f`.
    pub(crate) fn all(&self, start: u64, end: u64, f: impl Fn(&PageRights<P>) -> bool) -> bool {
        self.in_range(start, end).all(|(_, _, r)| f(r))
    }

    /// Whether some page of `[start, end)` satisfies `f`.
    pub(crate) fn any(&self, start: u64, end: u64, f: impl Fn(&PageRights<P>) -> bool) -> bool {
        self.in_range(start, end).any(|(_, _, r)| f(r))
    }

    /// Splits the run containing `page` so that a run starts at `page`. Needs one free slot of
    /// capacity (see [`Runs::update`]). Changes no page's rights.
    fn split_at(&mut self, page: u64) -> Result {
        let Some(i) = self
            .runs
            .iter()
            .position(|r| r.start < page && page < r.end)
        else {
            return Ok(());
        };
        let mut writers =
            KVec::with_capacity(self.runs[i].rights.writers.len(), GFP_KERNEL_ACCOUNT)?;
        for w in self.runs[i].rights.writers.iter() {
            writers.push(w.clone(), GFP_KERNEL_ACCOUNT)?;
        }
        let tail = Run {
            start: page,
            end: self.runs[i].end,
            rights: PageRights {
                owner: self.runs[i].rights.owner.clone(),
                writers,
                former: self.runs[i].rights.former.clone(),
            },
        };
        self.runs
            .insert_within_capacity(i + 1, tail)
            .map_err(|_| ENOMEM)?;
        // INVARIANT: the two halves cover what the run covered.
        self.runs[i].end = page;
        Ok(())
    }

    /// Changes the rights of every page of `[start, end)`, all or nothing.
    ///
    /// `prepare` runs first on every run of the range and may fail (to make room, say) but must
    /// not change what the rights say; `apply` then changes them and cannot fail. If anything
    /// fails, no page's rights have changed. `ENOSPC` when the range's ends would split the runs
    /// into more than [`MAX_RUNS`].
    pub(crate) fn update(
        &mut self,
        start: u64,
        end: u64,
        mut prepare: impl FnMut(&mut PageRights<P>) -> Result,
        mut apply: impl FnMut(&mut PageRights<P>),
    ) -> Result {
        let prepared = self.prepare(start, end, &mut prepare);
        if prepared.is_ok() {
            for r in self.runs.iter_mut() {
                if r.start >= start && r.end <= end {
                    apply(&mut r.rights);
                }
            }
        }
        // Merge what splitting (or applying) made equal.
        self.coalesce();
        prepared
    }

    fn prepare(
        &mut self,
        start: u64,
        end: u64,
        prepare: &mut impl FnMut(&mut PageRights<P>) -> Result,
    ) -> Result {
        // Room for the splits first (a change of whole runs needs none).
        let splits = [start, end]
            .iter()
            .filter(|&&p| self.runs.iter().any(|r| r.start < p && p < r.end))
            .count();
        self.runs.reserve(splits, GFP_KERNEL_ACCOUNT)?;
        let before = self.runs.len();
        self.split_at(start)?;
        self.split_at(end)?;
        // Splits that `update` merges back leave the runs as they were.
        if self.runs.len() > MAX_RUNS.max(before) {
            return Err(ENOSPC);
        }
        for r in self.runs.iter_mut() {
            if r.start >= start && r.end <= end {
                prepare(&mut r.rights)?;
            }
        }
        Ok(())
    }

    fn coalesce(&mut self) {
        let mut i = 0;
        while i + 1 < self.runs.len() {
            if self.runs[i].rights.same(&self.runs[i + 1].rights) {
                self.runs[i].end = self.runs[i + 1].end;
                // The removed run's contents are dropped here.
                let _ = self.runs.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }

    /// Number of runs, for tests and reports.
    pub(crate) fn len(&self) -> usize {
        self.runs.len()
    }
}

#[kunit_tests(moreram_rights)]
mod tests {
    use super::Runs;
    use kernel::prelude::*;

    fn grant(r: &mut Runs<u32>, start: u64, end: u64, p: u32) -> Result {
        r.update(
            start,
            end,
            |x| x.writers.reserve(1, GFP_KERNEL).map_err(Into::into),
            |x| {
                let _ = x.writers.push_within_capacity(p);
            },
        )
    }

    #[test]
    fn owner_writes_others_do_not() -> Result {
        let r = Runs::new(8, Some(1u32))?;
        assert!(r.all(0, 8, |p| p.may_write(&1)));
        assert!(!r.all(0, 8, |p| p.may_write(&2)));
        assert_eq!(r.len(), 1);
        Ok(())
    }

    #[test]
    fn grant_revoke_give_on_ranges() -> Result {
        let mut r = Runs::new(16, Some(1u32))?;
        // Grant 2 the write right on pages 4..8.
        grant(&mut r, 4, 8, 2)?;
        assert_eq!(r.len(), 3);
        assert!(r.all(4, 8, |p| p.may_write(&2)));
        assert!(!r.all(3, 8, |p| p.may_write(&2)));
        assert!(!r.all(4, 9, |p| p.may_write(&2)));
        // Revoke it from everyone on 0..16: the runs merge back into one.
        r.update(0, 16, |_| Ok(()), |p| p.writers.clear())?;
        assert_eq!(r.len(), 1);
        // Give pages 10..12 to 3: 1 can no longer write them, 3 can.
        r.update(
            10,
            12,
            |_| Ok(()),
            |p| {
                p.owner = Some(3);
                p.writers.clear();
            },
        )?;
        assert!(r.all(10, 12, |p| p.may_write(&3) && !p.may_write(&1)));
        assert!(r.all(0, 10, |p| p.may_write(&1)));
        assert!(r.all(12, 16, |p| p.may_write(&1)));
        assert_eq!(r.len(), 3);
        assert!(r.at(11).is_some_and(|p| p.owner == Some(3)));
        Ok(())
    }

    #[test]
    fn ownerless_pages() -> Result {
        let mut r = Runs::new(4, Some(1u32))?;
        r.update(0, 4, |_| Ok(()), |p| p.owner = None)?;
        assert!(!r.all(0, 4, |p| p.may_write(&1)));
        assert!(r.all(0, 4, |p| p.owner.is_none()));
        Ok(())
    }

    /// A change that fails part way (an allocation failure injected into the second run's
    /// preparation) leaves every page's rights as they were: no partial grant.
    #[test]
    fn failed_update_changes_nothing() -> Result {
        let mut r = Runs::new(16, Some(1u32))?;
        grant(&mut r, 4, 8, 2)?;
        assert_eq!(r.len(), 3);
        // Grant 3 on 0..12, which covers three runs; the second one's preparation fails.
        let mut seen = 0;
        let failed = r.update(
            0,
            12,
            |x| {
                seen += 1;
                if seen == 2 {
                    return Err(ENOMEM);
                }
                x.writers.reserve(1, GFP_KERNEL).map_err(Into::into)
            },
            |x| {
                let _ = x.writers.push_within_capacity(3);
            },
        );
        assert_eq!(failed, Err(ENOMEM));
        assert!(!r.any(0, 16, |p| p.may_write(&3)));
        assert!(r.all(4, 8, |p| p.may_write(&2)));
        assert!(!r.any(0, 4, |p| p.may_write(&2)));
        assert_eq!(r.len(), 3);
        // And the same change with nothing failing applies everywhere.
        grant(&mut r, 0, 12, 3)?;
        assert!(r.all(0, 12, |p| p.may_write(&3)));
        assert!(!r.any(12, 16, |p| p.may_write(&3)));
        Ok(())
    }
}
