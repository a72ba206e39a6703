// SPDX-License-Identifier: GPL-2.0

//! Share tokens (`MORERAM_IOC_SHARE`/`IMPORT`): what a token names and who may import it. A share
//! lives until the handle that made it goes.

use kernel::{bindings, prelude::*, sync::Arc, task::Kuid};

use super::{file::OpenFile, Tier};
use crate::{memory::Allocation, process::Process};

/// A share made with `MORERAM_IOC_SHARE`.
pub(super) struct Share {
    token: u64,
    alloc: Arc<Allocation>,
    /// The only process that may import, if named.
    named: Option<Process>,
    /// The sharer's user: without a name, only its processes may import.
    euid: Kuid,
    /// The file and handle that made it, to drop it with the handle.
    file: *const OpenFile,
    handle: u32,
}

// SAFETY: `file` is only compared, never dereferenced.
unsafe impl Send for Share {}

impl Tier {
    /// Makes a token for `alloc`, the allocation of `handle` in `file`; returns the token.
    pub(super) fn share(
        &self,
        file: &Arc<OpenFile>,
        handle: u32,
        alloc: Arc<Allocation>,
        named: Option<Process>,
    ) -> Result<u64> {
        let mut token = 0;
        while token == 0 {
            // SAFETY: no preconditions.
            token = unsafe { bindings::get_random_u64() };
        }
        self.shares.lock().push(
            Share {
                token,
                alloc,
                named,
                euid: Kuid::current_euid(),
                file: Arc::as_ptr(file),
                handle,
            },
            GFP_KERNEL,
        )?;
        Ok(token)
    }

    /// The allocation `token` names, if `me` may import it (`admin`: the caller has
    /// `CAP_SYS_ADMIN`).
    pub(super) fn import(&self, token: u64, me: &Process, admin: bool) -> Result<Arc<Allocation>> {
        let shares = self.shares.lock();
        let s = shares.iter().find(|s| s.token == token).ok_or(ENOENT)?;
        let allowed = match &s.named {
            Some(p) => p == me,
            None => Kuid::current_euid() == s.euid || admin,
        };
        if !allowed {
            return Err(EACCES);
        }
        Ok(s.alloc.clone())
    }

    /// Drops the shares `file` made, of `handle` only or of every handle.
    pub(super) fn unshare_file(&self, file: &Arc<OpenFile>, handle: Option<u32>) {
        let me = Arc::as_ptr(file);
        let mut gone = KVec::new();
        {
            let mut shares = self.shares.lock();
            let mine =
                |s: &Share| core::ptr::eq(s.file, me) && handle.is_none_or(|h| h == s.handle);
            while let Some(i) = shares.iter().position(mine) {
                if let Ok(s) = shares.remove(i) {
                    // Allocations are dropped outside the lock (or, with no memory to keep them
                    // aside, here: the lock order allows it).
                    let _ = gone.push(s, GFP_KERNEL);
                }
            }
        }
        drop(gone);
    }
}
