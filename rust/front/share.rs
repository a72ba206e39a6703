// SPDX-License-Identifier: GPL-2.0

//! Share tokens (`MORERAM_IOC_SHARE`/`IMPORT`): what a token names and who may import it. A share
//! lives until the handle that made it goes: the tier finds a share by its token, and the handle
//! lists the tokens made from it.

use kernel::{bindings, prelude::*, rbtree::RBTreeNodeReservation, sync::Arc, task::Kuid};

use super::{
    file::OpenFile,
    limits::{Charge, Kind},
    Tier,
};
use crate::{memory::Allocation, process::Process};

/// Tokens dropped under one hold of [`Tier::shares`]: a file closing with many tokens lets
/// others in between.
const UNSHARE_BATCH: usize = 64;

/// A share made with `MORERAM_IOC_SHARE`.
pub(super) struct Share {
    alloc: Arc<Allocation>,
    /// The only process that may import, if named.
    named: Option<Process>,
    /// The sharer's user: without a name, only its processes may import.
    euid: Kuid,
    /// That user's count of shares.
    _charge: Charge,
}

impl Tier {
    /// Makes a token for `alloc`, the allocation of `handle` in `file`; returns the token.
    pub(super) fn share(
        &self,
        file: &OpenFile,
        handle: u32,
        alloc: Arc<Allocation>,
        named: Option<Process>,
    ) -> Result<u64> {
        let share = Share {
            alloc,
            named,
            euid: Kuid::current_euid(),
            _charge: self.users.charge(Kind::Share)?,
        };
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        file.add_share(handle, || {
            let mut shares = self.shares.lock();
            let token = loop {
                // SAFETY: no preconditions.
                let t = unsafe { bindings::get_random_u64() };
                if t != 0 && shares.get(&t).is_none() {
                    break t;
                }
            };
            shares.insert(node.into_node(token, share));
            Ok(token)
        })
    }

    /// The allocation `token` names, if `me` may import it (`admin`: the caller has
    /// `CAP_SYS_ADMIN`).
    pub(super) fn import(&self, token: u64, me: &Process, admin: bool) -> Result<Arc<Allocation>> {
        let shares = self.shares.lock();
        let s = shares.get(&token).ok_or(ENOENT)?;
        let allowed = match &s.named {
            Some(p) => p == me,
            None => Kuid::current_euid() == s.euid || admin,
        };
        if !allowed {
            return Err(EACCES);
        }
        Ok(s.alloc.clone())
    }

    /// Drops the shares of `tokens`, made from a handle that is going. The handle's allocation
    /// outlives the call (the caller still holds it), so the shares may drop under the lock.
    pub(super) fn unshare(&self, tokens: &[u64]) {
        for batch in tokens.chunks(UNSHARE_BATCH) {
            let mut shares = self.shares.lock();
            for t in batch {
                drop(shares.remove(t));
            }
        }
    }
}
