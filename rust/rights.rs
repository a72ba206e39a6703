// SPDX-License-Identifier: GPL-2.0

//! Page owners and write rights, in the spirit of the 3DO Portfolio OS.
//!
//! Every page of an allocation has at most one owner process and a set of processes the owner
//! has allowed to write it. A process is identified by the `struct pid` of its thread group,
//! held by reference, never by its number, which can be reused after it exits.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

use crate::shim;

/// A process: a counted reference to the `struct pid` of a thread group.
///
/// # Invariants
///
/// `0` points to a `struct pid` on which this value holds one reference.
pub(crate) struct Process(NonNull<bindings::pid>);

// SAFETY: a `struct pid` reference may be taken and dropped on any thread.
unsafe impl Send for Process {}
// SAFETY: `&Process` only compares pointers and reads the pid number, which the kernel allows
// concurrently.
unsafe impl Sync for Process {}

impl Process {
    /// The calling process.
    pub(crate) fn current() -> Self {
        // SAFETY: `moreram_current_tgid` returns a new reference to current's thread-group pid,
        // which always exists for a running task.
        let pid = unsafe { shim::moreram_current_tgid() };
        // INVARIANT: we own the reference just taken. `current`'s tgid pid is never NULL.
        Self(NonNull::new(pid).unwrap_or(NonNull::dangling()))
    }

    /// The live process whose thread-group id is `nr` in the caller's pid namespace.
    pub(crate) fn find(nr: i32) -> Result<Self> {
        if nr <= 0 {
            return Err(EINVAL);
        }
        // SAFETY: `moreram_find_tgid` takes its own RCU read lock and returns a new reference, or
        // NULL when no thread group has that id.
        let pid = unsafe { shim::moreram_find_tgid(nr) };
        // INVARIANT: the reference is ours.
        NonNull::new(pid).map(Self).ok_or(ESRCH)
    }

    /// The process of `pid` (a new reference), or `None` for NULL.
    pub(crate) fn from_pid(pid: *mut bindings::pid) -> Option<Self> {
        let pid = NonNull::new(pid)?;
        // SAFETY: the caller's `pid` is valid; we take our own reference.
        unsafe { shim::moreram_get_pid(pid.as_ptr()) };
        // INVARIANT: the reference was just taken.
        Some(Self(pid))
    }

    /// The `struct pid`.
    pub(crate) fn as_ptr(&self) -> *mut bindings::pid {
        self.0.as_ptr()
    }

    /// The process's thread-group id in the caller's pid namespace; 0 when it is not visible
    /// there or has been reaped.
    pub(crate) fn nr(&self) -> i32 {
        // SAFETY: `self.0` is a valid `struct pid` by the type invariants.
        unsafe { shim::moreram_pid_nr(self.0.as_ptr()) }
    }
}

impl Clone for Process {
    fn clone(&self) -> Self {
        // SAFETY: `self.0` is a valid `struct pid`; the new reference is owned by the clone.
        unsafe { shim::moreram_get_pid(self.0.as_ptr()) };
        // INVARIANT: the reference was just taken.
        Self(self.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariants).
        unsafe { bindings::put_pid(self.0.as_ptr()) };
    }
}

impl PartialEq for Process {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

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

    fn same(&self, other: &Self) -> bool {
        self.owner == other.owner
            && self.former == other.former
            && self.writers.len() == other.writers.len()
            && self.writers.iter().all(|w| other.writers.contains(w))
    }
}

/// A run of pages `[start, end)` with the same rights.
pub(crate) struct Run<P> {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) rights: PageRights<P>,
}

/// The rights of every page of an allocation, as sorted runs that cover `[0, npages)`.
///
/// # Invariants
///
/// The runs are sorted, non-empty, adjacent, and cover `[0, npages)` exactly.
pub(crate) struct Runs<P> {
    runs: KVec<Run<P>>,
}

impl<P: Clone + PartialEq> Runs<P> {
    /// `npages` pages, all owned by `owner`.
    pub(crate) fn new(npages: u64, owner: P) -> Result<Self> {
        let mut runs = KVec::new();
        runs.push(
            Run {
                start: 0,
                end: npages,
                rights: PageRights {
                    owner: Some(owner),
                    writers: KVec::new(),
                    former: None,
                },
            },
            GFP_KERNEL,
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
        self.runs
            .iter()
            .filter(move |r| r.start < end && r.end > start)
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

    /// Splits the run containing `page` so that a run starts at `page`. Needs one free slot of
    /// capacity (see [`Runs::update`]).
    fn split_at(&mut self, page: u64) -> Result {
        let Some(i) = self
            .runs
            .iter()
            .position(|r| r.start < page && page < r.end)
        else {
            return Ok(());
        };
        let mut writers = KVec::with_capacity(self.runs[i].rights.writers.len(), GFP_KERNEL)?;
        for w in self.runs[i].rights.writers.iter() {
            writers.push(w.clone(), GFP_KERNEL)?;
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

    /// Applies `f` to the rights of every page of `[start, end)`, then merges equal neighbours.
    ///
    /// `f` must not fail after it has changed anything; on an allocation failure nothing changes.
    pub(crate) fn update(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(&mut PageRights<P>) -> Result,
    ) -> Result {
        // Room for the two splits first, so that nothing fails half way.
        self.runs.reserve(2, GFP_KERNEL)?;
        self.split_at(start)?;
        self.split_at(end)?;
        for r in self.runs.iter_mut() {
            if r.start >= start && r.end <= end {
                f(&mut r.rights)?;
            }
        }
        self.coalesce();
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

    #[test]
    fn owner_writes_others_do_not() -> Result {
        let r = Runs::new(8, 1u32)?;
        assert!(r.all(0, 8, |p| p.may_write(&1)));
        assert!(!r.all(0, 8, |p| p.may_write(&2)));
        assert_eq!(r.len(), 1);
        Ok(())
    }

    #[test]
    fn grant_revoke_give_on_ranges() -> Result {
        let mut r = Runs::new(16, 1u32)?;
        // Grant 2 the write right on pages 4..8.
        r.update(4, 8, |p| p.writers.push(2, GFP_KERNEL).map_err(Into::into))?;
        assert_eq!(r.len(), 3);
        assert!(r.all(4, 8, |p| p.may_write(&2)));
        assert!(!r.all(3, 8, |p| p.may_write(&2)));
        assert!(!r.all(4, 9, |p| p.may_write(&2)));
        // Revoke it from everyone on 0..16: the runs merge back into one.
        r.update(0, 16, |p| {
            p.writers.clear();
            Ok(())
        })?;
        assert_eq!(r.len(), 1);
        // Give pages 10..12 to 3: 1 can no longer write them, 3 can.
        r.update(10, 12, |p| {
            p.owner = Some(3);
            p.writers.clear();
            Ok(())
        })?;
        assert!(r.all(10, 12, |p| p.may_write(&3) && !p.may_write(&1)));
        assert!(r.all(0, 10, |p| p.may_write(&1)));
        assert!(r.all(12, 16, |p| p.may_write(&1)));
        assert_eq!(r.len(), 3);
        assert!(r.at(11).map(|p| p.owner == Some(3)).unwrap_or(false));
        Ok(())
    }

    #[test]
    fn ownerless_pages() -> Result {
        let mut r = Runs::new(4, 1u32)?;
        r.update(0, 4, |p| {
            p.owner = None;
            Ok(())
        })?;
        assert!(!r.all(0, 4, |p| p.may_write(&1)));
        assert!(r.all(0, 4, |p| p.owner.is_none()));
        Ok(())
    }
}
