// SPDX-License-Identifier: GPL-2.0

//! Bounds on what one open file and one user can make the module hold: handles and share tokens.
//!
//! Each is counted twice: in the file that holds it (`EMFILE` at the file's limit, see
//! `file.rs`) and against the effective user of the process that made it (`EDQUOT` at the user's
//! limit), here. A user is charged from the moment the object is made until it goes, by a
//! [`Charge`] the object owns; a user with nothing charged has no entry.

use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{Entry, RBTree, RBTreeNodeReservation},
    sync::{Arc, Mutex},
    task::Kuid,
};

/// The limits, from the module's parameters; each at least 1.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) handles_per_file: u32,
    pub(crate) handles_per_user: u32,
    pub(crate) shares_per_file: u32,
    pub(crate) shares_per_user: u32,
}

/// What may be charged.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Handle,
    Share,
}

/// What one user holds.
#[derive(Default)]
struct Held {
    handles: u32,
    shares: u32,
}

impl Held {
    fn count(&mut self, kind: Kind) -> &mut u32 {
        match kind {
            Kind::Handle => &mut self.handles,
            Kind::Share => &mut self.shares,
        }
    }
}

/// Every user's holdings.
#[pin_data]
pub(crate) struct Users {
    pub(crate) limits: Limits,
    /// By kernel uid. A leaf lock: nothing is taken under it, so it may be taken under any other.
    #[pin]
    held: Mutex<RBTree<u32, Held>>,
}

impl Users {
    pub(crate) fn new(limits: Limits) -> Result<Arc<Self>> {
        if [
            limits.handles_per_file,
            limits.handles_per_user,
            limits.shares_per_file,
            limits.shares_per_user,
        ]
        .contains(&0)
        {
            return Err(EINVAL);
        }
        Arc::pin_init(
            pin_init!(Users {
                limits,
                held <- new_mutex!(RBTree::new()),
            }),
            GFP_KERNEL,
        )
    }

    fn limit(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Handle => self.limits.handles_per_user,
            Kind::Share => self.limits.shares_per_user,
        }
    }

    /// Charges one more object of `kind` to the caller's effective user: `EDQUOT` when it holds
    /// as many as it may.
    pub(crate) fn charge(self: &Arc<Self>, kind: Kind) -> Result<Charge> {
        let uid = Kuid::current_euid().into_raw().val;
        let mut node = None;
        let mut held = self.held.lock();
        if held.get(&uid).is_none() {
            // The user's first object: room for its entry is made outside the lock.
            drop(held);
            node = Some(RBTreeNodeReservation::new(GFP_KERNEL)?);
            held = self.held.lock();
        }
        let h = match held.entry(uid) {
            Entry::Occupied(o) => o.into_mut(),
            // Vacant only after room was made above.
            Entry::Vacant(v) => v.insert(Held::default(), node.take().ok_or(ENOMEM)?),
        };
        let n = h.count(kind);
        // A new entry is never at the limit (each is at least 1): nothing to undo.
        if *n >= self.limit(kind) {
            return Err(EDQUOT);
        }
        *n += 1;
        Ok(Charge {
            users: self.clone(),
            uid,
            kind,
        })
    }

    fn uncharge(&self, uid: u32, kind: Kind) {
        let mut held = self.held.lock();
        if let Some(h) = held.get_mut(&uid) {
            let n = h.count(kind);
            *n = n.saturating_sub(1);
            if h.handles == 0 && h.shares == 0 {
                held.remove(&uid);
            }
        }
    }
}

/// One object charged to a user, until it drops.
pub(crate) struct Charge {
    users: Arc<Users>,
    uid: u32,
    kind: Kind,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.users.uncharge(self.uid, self.kind);
    }
}
