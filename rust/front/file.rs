// SPDX-License-Identifier: GPL-2.0

//! An open `/dev/moreram`: its handles, by number and by mmap offset, its accounting, and its
//! scavenge events.

use kernel::{
    cred::Credential,
    new_mutex, new_poll_condvar,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{aref::ARef, poll::PollCondVar, Arc, Mutex},
};

use super::{
    limits::{Charge, Kind},
    Tier,
};
use crate::{
    memory::Allocation,
    policy::pool::Request,
    process::{current_cred, Process},
    uapi,
};

/// A handle: an allocation, and the process that holds it (that allocated or imported it).
pub(crate) struct Handle {
    pub(crate) alloc: Arc<Allocation>,
    pub(crate) holder: Process,
    /// The share tokens made from it, which go with it.
    pub(crate) tokens: KVec<u64>,
    /// Its user's count of handles.
    _charge: Charge,
}

/// The handles of one open file.
pub(crate) struct Handles {
    /// Handle to give next; handles are never reused within a file.
    next: u32,
    pub(crate) by_handle: RBTree<u32, Handle>,
    /// Every handle, by the *last* page offset of its allocation, so that a lower-bound search
    /// from any page finds an allocation containing it. Keyed with the handle too: an
    /// allocation imported into the file that made it has two handles here, and either may go
    /// first.
    by_last_pgoff: RBTree<(u64, u32), ()>,
    /// Handles, and share tokens made from them: each at most the file's limit.
    pub(crate) count: u32,
    shares: u32,
    pub(crate) vram_bytes: u64,
    pub(crate) system_bytes: u64,
}

impl Handles {
    fn account(&mut self, alloc: &Allocation, add: bool) {
        let bytes = match alloc.tier() {
            uapi::Tier::Vram(_) => &mut self.vram_bytes,
            uapi::Tier::System => &mut self.system_bytes,
        };
        if add {
            *bytes += alloc.size();
        } else {
            *bytes -= alloc.size();
        }
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        // The file is going: every holder lets go of what its handles held here.
        for h in self.by_handle.values() {
            h.alloc.unhold(&h.holder);
        }
    }
}

/// The signal `MORERAM_IOC_NOTIFY` asked for, and the credentials of the process that asked: it
/// is sent only while they allow it.
struct Notify {
    signal: u32,
    cred: ARef<Credential>,
}

/// A file's scavenge events, and what else to do with each.
struct Events {
    /// Requests not read yet, oldest first; at most one per bank.
    queue: KVec<uapi::moreram_event>,
    /// A signal to send with every event.
    notify: Option<Notify>,
}

/// Per-open-file state, in the file's `private_data`.
#[pin_data]
pub(crate) struct OpenFile {
    pub(crate) tier: Arc<Tier>,
    /// The process that opened the file: scavenge requests for its pool are queued here.
    opener: Process,
    /// Protected by its mutex; taken after the tier's file registry, before shares.
    #[pin]
    pub(crate) handles: Mutex<Handles>,
    /// Scavenge requests not read yet, and the signal that goes with them. Taken with no lock
    /// held but the tier's file registry.
    #[pin]
    events: Mutex<Events>,
    /// Woken when an event is queued; `poll` waits on it.
    #[pin]
    event_cv: PollCondVar,
    /// `drm-client-id`.
    client_id: u64,
}

impl OpenFile {
    /// State for a file of `tier` being opened.
    pub(crate) fn open(tier: &Arc<Tier>) -> Result<Arc<Self>> {
        let file = Arc::pin_init(
            try_pin_init!(OpenFile {
                tier: tier.clone(),
                opener: Process::current()?,
                events <- new_mutex!(Events {
                    queue: KVec::new(),
                    notify: None,
                }),
                event_cv <- new_poll_condvar!("moreram::event_cv"),
                client_id: tier.next_client_id(),
                handles <- new_mutex!(Handles {
                    next: 1,
                    by_handle: RBTree::new(),
                    by_last_pgoff: RBTree::new(),
                    count: 0,
                    shares: 0,
                    vram_bytes: 0,
                    system_bytes: 0,
                }),
            }),
            GFP_KERNEL,
        )?;
        tier.add_file(file.clone())?;
        Ok(file)
    }

    /// The file is being released: forget it and every share it made.
    ///
    /// Its handles go here, not when the last reference to this state does: a report that
    /// holds one meanwhile (`MORERAM_IOC_PROCS`, debugfs) must not keep the holders' hold on
    /// their pages, and the pages' owners, past the release.
    pub(crate) fn release(self: &Arc<Self>) {
        self.tier.remove_file(self);
        let mut h = self.handles.lock();
        for entry in h.by_handle.values_mut() {
            self.tier.unshare(&entry.tokens);
            entry.tokens.clear();
        }
        h.shares = 0;
        let handles = core::mem::take(&mut h.by_handle);
        h.by_last_pgoff = RBTree::default();
        h.count = 0;
        h.vram_bytes = 0;
        h.system_bytes = 0;
        drop(h);
        // memdebug: allocations still mapped elsewhere outlive the file that made them.
        if self.tier.memdebug.on() {
            for (handle, entry) in handles.iter() {
                if entry.alloc.mappings() > 0 {
                    self.tier.memdebug.leak();
                    pr_warn!(
                        "moreram: memdebug: pid {} closed its file with handle {} ({} bytes) still mapped elsewhere\n",
                        entry.holder.nr(),
                        handle,
                        entry.alloc.size()
                    );
                }
            }
        }
        // Every holder lets go of what its handles held here, as `Handles::drop` would.
        for entry in handles.values() {
            entry.alloc.unhold(&entry.holder);
        }
    }

    pub(crate) fn opener(&self) -> &Process {
        &self.opener
    }

    pub(crate) fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Charges a new handle to the caller's user (`EDQUOT` at its limit), once the file has room
    /// for one (`EMFILE`); [`Self::insert`] checks the file again.
    pub(crate) fn charge_handle(&self) -> Result<Charge> {
        if self.handles.lock().count >= self.tier.users.limits.handles_per_file {
            return Err(EMFILE);
        }
        self.tier.users.charge(Kind::Handle)
    }

    /// Adds `alloc`, held by `holder`, as a new handle charged with `charge`; returns the handle.
    /// On failure `holder` lets go of the allocation again.
    pub(crate) fn insert(
        &self,
        alloc: Arc<Allocation>,
        holder: Process,
        charge: Charge,
    ) -> Result<u32> {
        let inserted = self.try_insert(&alloc, &holder, charge);
        if inserted.is_err() {
            alloc.unhold(&holder);
        }
        inserted
    }

    fn try_insert(&self, alloc: &Arc<Allocation>, holder: &Process, charge: Charge) -> Result<u32> {
        // Reserve the tree nodes first: nothing can fail after the handle number is taken.
        let handle_node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let pgoff_node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut h = self.handles.lock();
        if h.count >= self.tier.users.limits.handles_per_file {
            return Err(EMFILE);
        }
        let handle = h.next;
        h.next = handle.checked_add(1).ok_or(EMFILE)?;
        h.count += 1;
        h.account(alloc, true);
        let last = alloc.pgoff() + alloc.npages() - 1;
        h.by_last_pgoff
            .insert(pgoff_node.into_node((last, handle), ()));
        h.by_handle.insert(handle_node.into_node(
            handle,
            Handle {
                alloc: alloc.clone(),
                holder: holder.clone(),
                tokens: KVec::new(),
                _charge: charge,
            },
        ));
        Ok(handle)
    }

    /// Removes `handle`, which only its holder may do.
    pub(crate) fn remove(&self, handle: u32, me: &Process) -> Result<Handle> {
        let mut h = self.handles.lock();
        let entry = h.by_handle.get(&handle).ok_or(ENOENT)?;
        // Only the holder frees its handle, not a process that shares the file descriptor.
        if entry.holder != *me {
            return Err(EPERM);
        }
        let entry = h.by_handle.remove(&handle).ok_or(ENOENT)?;
        h.by_last_pgoff
            .remove(&(entry.alloc.pgoff() + entry.alloc.npages() - 1, handle));
        h.count -= 1;
        h.shares -= entry.tokens.len() as u32;
        h.account(&entry.alloc, false);
        Ok(entry)
    }

    /// A new share of `handle`: `make` makes it and returns its token, which goes with the
    /// handle. Under the file's lock, so that the handle cannot go meanwhile. `EMFILE` when the
    /// file has as many shares as it may.
    pub(crate) fn add_share(&self, handle: u32, make: impl FnOnce() -> Result<u64>) -> Result<u64> {
        let mut h = self.handles.lock();
        if h.shares >= self.tier.users.limits.shares_per_file {
            return Err(EMFILE);
        }
        let entry = h.by_handle.get_mut(&handle).ok_or(ENOENT)?;
        entry.tokens.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let token = make()?;
        // Room was made above.
        let _ = entry.tokens.push_within_capacity(token);
        h.shares += 1;
        Ok(token)
    }

    /// The allocation behind `handle`.
    pub(crate) fn get(&self, handle: u32) -> Result<Arc<Allocation>> {
        let h = self.handles.lock();
        Ok(h.by_handle.get(&handle).ok_or(ENOENT)?.alloc.clone())
    }

    /// The allocation containing page offset `pgoff`, if this file has one.
    pub(crate) fn find_by_pgoff(&self, pgoff: u64) -> Option<Arc<Allocation>> {
        let h = self.handles.lock();
        let cursor = h.by_last_pgoff.cursor_lower_bound(&(pgoff, 0))?;
        let ((_, handle), ()) = cursor.current();
        let alloc = &h.by_handle.get(handle)?.alloc;
        (alloc.pgoff() <= pgoff).then(|| alloc.clone())
    }

    /// Calls `f` on the allocation of every handle.
    pub(crate) fn for_each_allocation(
        &self,
        mut f: impl FnMut(&Arc<Allocation>) -> Result,
    ) -> Result {
        let h = self.handles.lock();
        for entry in h.by_handle.values() {
            f(&entry.alloc)?;
        }
        Ok(())
    }

    /// Queues a scavenge request, wakes the readers, and sends the signal asked for. A newer
    /// request for a bank replaces one that waits (it has the pool's size and deadline of now):
    /// a file that is not read holds one event per bank, however many come.
    pub(crate) fn push_event(&self, r: &Request) {
        let e = uapi::moreram_event {
            type_: uapi::MORERAM_EVENT_SCAVENGE,
            bank: r.bank,
            bytes: r.bytes,
            deadline_ns: r.deadline_ns as u64,
            ..Default::default()
        };
        let notify = {
            let mut events = self.events.lock();
            let queued = match events.queue.iter_mut().find(|q| q.bank == e.bank) {
                Some(q) => {
                    *q = e;
                    true
                }
                None => events.queue.push(e, GFP_KERNEL).is_ok(),
            };
            if queued {
                self.event_cv.notify_all();
            }
            events.notify.as_ref().map(|n| (n.signal, n.cred.clone()))
        };
        if let Some((signal, cred)) = notify {
            // Checked again as it is sent: the opener's credentials may have changed since the
            // signal was asked for (a setuid program, say). A signal not allowed is not sent.
            let _ = r.process.signal_as(signal, &cred);
        }
    }

    /// `MORERAM_IOC_NOTIFY`: sets the signal sent to the opener with every event (0 for none).
    /// The caller must be allowed to signal the opener, now and whenever the signal is sent.
    pub(crate) fn set_notify(&self, signal: u32) -> Result {
        let notify = if signal == 0 {
            None
        } else {
            let cred = current_cred()?;
            self.opener.signal_as(0, &cred)?;
            Some(Notify { signal, cred })
        };
        self.events.lock().notify = notify;
        Ok(())
    }

    /// Whether an event waits to be read.
    pub(crate) fn has_events(&self) -> bool {
        !self.events.lock().queue.is_empty()
    }

    /// The condition variable `poll` registers on.
    pub(crate) fn event_cv(&self) -> &PollCondVar {
        &self.event_cv
    }

    /// Puts back `ev`, taken by [`Self::next_event`] but not delivered, as the oldest event;
    /// unless a newer request for its bank came in meanwhile, which replaces it.
    pub(crate) fn unread(&self, ev: uapi::moreram_event) {
        let queue = &mut self.events.lock().queue;
        if queue.iter().any(|q| q.bank == ev.bank) {
            return;
        }
        // Taking it left room, unless another event came in meanwhile; only when no memory is
        // left for one more is it lost (its deadline still applies).
        let room = queue.len() < queue.capacity() || queue.reserve(1, GFP_KERNEL).is_ok();
        if room && queue.insert_within_capacity(0, ev).is_ok() {
            self.event_cv.notify_all();
        }
    }

    /// The oldest event; waits for one unless `nonblock`.
    pub(crate) fn next_event(&self, nonblock: bool) -> Result<uapi::moreram_event> {
        let mut ev = self.events.lock();
        loop {
            if !ev.queue.is_empty() {
                return ev.queue.remove(0).map_err(|_| EINVAL);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            if self.event_cv.wait_interruptible(&mut ev) {
                return Err(ERESTARTSYS);
            }
        }
    }
}
