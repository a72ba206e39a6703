// SPDX-License-Identifier: GPL-2.0

//! Who may do what with an allocation's pages: the rules of the ownership model over the rights
//! an allocation keeps (`memory/rights.rs`). After the 3DO's `ControlMem`: an owner grants,
//! revokes and gives; a writer may drop its own right; readers are named or share the
//! allocator's user.

use kernel::{bindings, prelude::*, task::Kuid};

use crate::{
    memory::{Allocation, State},
    process::Process,
    uapi,
};

/// Writers a page may have besides its owner: a grant past it fails with `ENOSPC`.
pub(crate) const MAX_WRITERS: usize = 64;

/// Processes an allocation may name as readers; those that have exited do not count (they can
/// never read again). Naming one more fails with `ENOSPC`.
pub(crate) const MAX_READERS: usize = 1024;

/// Whether the caller has `CAP_SYS_ADMIN`: it may inspect any allocation, never write one.
pub(crate) fn admin() -> bool {
    // SAFETY: `capable` only reads the caller's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// Whether `p` may read `alloc`: it owns or may write a page of it, was named as a reader, or
/// runs as the user that allocated it; or it has `CAP_SYS_ADMIN` (`admin`).
pub(crate) fn may_read(alloc: &Allocation, st: &State, p: &Process, admin: bool) -> bool {
    admin
        || Kuid::current_euid() == alloc.euid()
        || st.readers.contains(p)
        || st.rights.any(0, alloc.npages(), |r| r.may_write(p))
}

/// Names `p` as a reader of the allocation (once). `prepare` first if it must not fail.
fn add_reader(st: &mut State, p: &Process) {
    if !st.readers.contains(p) {
        // Room was made by `reserve_reader`.
        let _ = st.readers.push_within_capacity(p.clone());
    }
}

/// Makes room to name `p` as a reader: `ENOSPC` when as many live processes are named already.
fn reserve_reader(st: &mut State, p: &Process) -> Result {
    if st.readers.contains(p) {
        return Ok(());
    }
    if st.readers.len() >= MAX_READERS {
        st.readers.retain(|r| !r.is_exiting());
        if st.readers.len() >= MAX_READERS {
            return Err(ENOSPC);
        }
    }
    st.readers.reserve(1, GFP_KERNEL_ACCOUNT)?;
    Ok(())
}

/// `MORERAM_IOC_SHARE` of `alloc` by `me`: only an owner of some of its pages shares it; a named
/// process becomes a reader.
pub(crate) fn share(alloc: &Allocation, me: &Process, named: Option<&Process>) -> Result {
    let mut st = alloc.state();
    if !st.rights.any(0, alloc.npages(), |r| r.owned_by(me)) {
        return Err(EPERM);
    }
    if let Some(p) = named {
        reserve_reader(&mut st, p)?;
        add_reader(&mut st, p);
    }
    Ok(())
}

/// A rights change, with its target resolved to a process.
pub(crate) enum Change {
    GrantWrite(Process),
    /// From one process, or from every writer (`None`).
    RevokeWrite(Option<Process>),
    Give(Process),
}

/// `MORERAM_IOC_CONTROL`: `me` changes the rights on pages `[start, end)` of `alloc`, all or
/// nothing; whoever loses write access faults on its next write. Pages are given only to a
/// process that holds a handle to the allocation.
pub(crate) fn control(
    alloc: &Allocation,
    me: &Process,
    range: (u64, u64),
    change: Change,
) -> Result {
    let mut st = alloc.state();
    let owner_of_all = st.rights.all(range.0, range.1, |r| r.owned_by(me));
    match change {
        Change::GrantWrite(t) if owner_of_all => grant(&mut st, range, &t),
        Change::Give(t) if owner_of_all => {
            // The receiver consents by holding a handle (it allocated or imported the
            // allocation): nobody is made to own, and be charged for, pages it never asked for,
            // and given pages go back when their new owner lets go of its handles.
            if !st.holds(&t) {
                return Err(EACCES);
            }
            give(&mut st, range, &t)?;
            // The giver, and every former writer, loses write access now.
            alloc.zap(range.0, range.1);
            Ok(())
        }
        Change::RevokeWrite(t) => {
            // Any writer may drop its own right; everything else is the owner's call.
            let own_right = t.as_ref() == Some(me)
                && st.rights.all(range.0, range.1, |r| r.writers.contains(me));
            if !owner_of_all && !own_right {
                return Err(EPERM);
            }
            revoke(&mut st, range, t.as_ref())?;
            // Before returning: the losers' next write faults and is refused.
            alloc.zap(range.0, range.1);
            Ok(())
        }
        Change::GrantWrite(_) | Change::Give(_) => Err(EPERM),
    }
}

/// Lets `t` write pages `[start, end)`; `t` becomes a reader, so that it can map them whatever
/// its user. `ENOSPC` when a page has as many writers as it may.
fn grant(st: &mut State, (start, end): (u64, u64), t: &Process) -> Result {
    reserve_reader(st, t)?;
    st.rights.update(
        start,
        end,
        |r| {
            if r.may_write(t) {
                return Ok(());
            }
            if r.writers.len() >= MAX_WRITERS {
                return Err(ENOSPC);
            }
            r.writers.reserve(1, GFP_KERNEL_ACCOUNT).map_err(Into::into)
        },
        |r| {
            if !r.may_write(t) {
                // Room was made in the first pass.
                let _ = r.writers.push_within_capacity(t.clone());
            }
        },
    )?;
    add_reader(st, t);
    Ok(())
}

/// Takes the write right on pages `[start, end)` from `t`, or from every writer.
fn revoke(st: &mut State, (start, end): (u64, u64), t: Option<&Process>) -> Result {
    st.rights.update(
        start,
        end,
        |_| Ok(()),
        |r| match t {
            Some(t) => r.writers.retain(|w| w != t),
            None => r.writers.clear(),
        },
    )
}

/// Makes `t` the owner of pages `[start, end)`, with no other writer.
fn give(st: &mut State, (start, end): (u64, u64), t: &Process) -> Result {
    reserve_reader(st, t)?;
    st.rights.update(
        start,
        end,
        |_| Ok(()),
        |r| {
            r.owner = Some(t.clone());
            r.writers.clear();
        },
    )?;
    add_reader(st, t);
    Ok(())
}

/// What `MORERAM_IOC_RIGHTS` reports: the rights on the first page of a range, and the caller's
/// over all of it.
pub(crate) struct Report {
    pub(crate) owner: i32,
    pub(crate) writers: KVec<i32>,
    pub(crate) readers: KVec<i32>,
    /// The range's pages do not all have the same rights.
    pub(crate) mixed: bool,
    /// `MORERAM_RIGHT_*` of the caller.
    pub(crate) caller: u32,
}

/// The rights on pages `[start, end)` of `alloc`, as `me` sees them.
pub(crate) fn report(alloc: &Allocation, me: &Process, (start, end): (u64, u64)) -> Result<Report> {
    let st = alloc.state();
    let first = st.rights.at(start).ok_or(EINVAL)?;
    let mut writers = KVec::new();
    // Writers and readers that are gone, or not visible to the caller, are left out.
    for w in first.writers.iter().map(Process::nr).filter(|&nr| nr != 0) {
        writers.push(w, GFP_KERNEL)?;
    }
    let mut readers = KVec::new();
    for r in st.readers.iter().map(Process::nr).filter(|&nr| nr != 0) {
        readers.push(r, GFP_KERNEL)?;
    }
    let mut caller = 0;
    if may_read(alloc, &st, me, false) {
        caller |= uapi::MORERAM_RIGHT_READ;
    }
    if st.rights.all(start, end, |r| r.may_write(me)) {
        caller |= uapi::MORERAM_RIGHT_WRITE | uapi::MORERAM_RIGHT_READ;
    }
    if st.rights.all(start, end, |r| r.owned_by(me)) {
        caller |= uapi::MORERAM_RIGHT_OWNER;
    }
    Ok(Report {
        owner: first.owner.as_ref().map_or(0, |p| p.nr()),
        writers,
        readers,
        mixed: st.rights.in_range(start, end).count() > 1,
        caller,
    })
}
