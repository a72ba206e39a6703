// SPDX-License-Identifier: GPL-2.0

//! Processes, as the tier names them: by the `struct pid` of their thread group, held by
//! reference, never by their number, which can be reused after they exit.

use core::ptr::NonNull;
use kernel::{
    bindings,
    cred::Credential,
    error::to_result,
    prelude::*,
    sync::{aref::ARef, rcu},
    task::Task,
};

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
    ///
    /// `ESRCH` if the caller's thread group has no pid any more, which happens only to a task
    /// that has been released while exiting (it no longer runs system calls or faults).
    pub(crate) fn current() -> Result<Self> {
        // SAFETY: `current` is a live task; `get_task_pid` takes its own RCU read lock and returns
        // a new reference, or NULL when the task's thread group has been detached.
        let pid = unsafe {
            bindings::get_task_pid(
                kernel::task::Task::current_raw(),
                bindings::pid_type_PIDTYPE_TGID,
            )
        };
        // INVARIANT: the reference is ours.
        NonNull::new(pid).map(Self).ok_or(ESRCH)
    }

    /// The live process whose thread-group id is `nr` in the caller's pid namespace: `EINVAL` for
    /// a number that names no process, `ESRCH` when none has it.
    pub(crate) fn find(nr: i32) -> Result<Self> {
        if nr <= 0 {
            return Err(EINVAL);
        }
        // SAFETY: `find_get_pid` takes its own RCU read lock and returns a new reference, or NULL.
        let pid = NonNull::new(unsafe { bindings::find_get_pid(nr) }).ok_or(ESRCH)?;
        // INVARIANT: the reference is ours; dropped below if it names no thread group.
        let p = Self(pid);
        // Only a thread-group leader's pid names a process.
        if p.task_flags().is_none() {
            return Err(ESRCH);
        }
        Ok(p)
    }

    /// The process of `pid` (a new reference), or `None` for NULL.
    ///
    /// # Safety
    ///
    /// `pid` is NULL or a valid `struct pid` for the duration of the call.
    pub(crate) unsafe fn from_pid(pid: *mut bindings::pid) -> Option<Self> {
        let pid = NonNull::new(pid)?;
        // SAFETY: the caller guarantees `pid` is valid; we take our own reference.
        unsafe { shim::moreram_get_pid(pid.as_ptr()) };
        // INVARIANT: the reference was just taken.
        Some(Self(pid))
    }

    /// The process's thread-group id in the caller's pid namespace; 0 when it is not visible
    /// there or is gone. A `struct pid` keeps its number after its last task is reaped, when
    /// the number may already be another process's: reported, it would name that one.
    pub(crate) fn nr(&self) -> i32 {
        let _rcu = rcu::read_lock();
        // SAFETY: `self.0` is a valid `struct pid`; `pid_task` needs the RCU read lock, held.
        let task = unsafe { bindings::pid_task(self.0.as_ptr(), bindings::pid_type_PIDTYPE_TGID) };
        if task.is_null() {
            return 0;
        }
        // SAFETY: `self.0` is a valid `struct pid` by the type invariants. Its number is not
        // freed while a task is attached, and `pid_task` found one under the RCU read lock.
        unsafe { bindings::pid_vnr(self.0.as_ptr()) }
    }

    /// The flags of the thread group's leader, or `None` when the group has no task any more.
    fn task_flags(&self) -> Option<u32> {
        let _rcu = rcu::read_lock();
        // SAFETY: `self.0` is a valid `struct pid`; `pid_task` needs the RCU read lock, held.
        let task = unsafe { bindings::pid_task(self.0.as_ptr(), bindings::pid_type_PIDTYPE_TGID) };
        // SAFETY: under the RCU read lock, a task found by `pid_task` is not freed.
        (!task.is_null()).then(|| unsafe { (*task).flags })
    }

    /// Sends `signal` to the process on behalf of whoever holds `cred`, if they may signal it:
    /// a real or effective user ID of `cred` must be the process's real or saved user ID, and the
    /// security module must agree. Signal 0 only checks. `EPERM` when they may not, `ESRCH` when
    /// the process is gone.
    pub(crate) fn signal_as(&self, signal: u32, cred: &Credential) -> Result {
        let signal = i32::try_from(signal)?;
        let value = bindings::sigval_t { sival_int: 0 };
        // SAFETY: `self.0` is a valid `struct pid` (type invariants) and `cred` valid credentials,
        // both for the duration of the call; `kill_pid_usb_asyncio` checks the permission
        // (`kill_as_cred_perm` and the security module) and sends under the RCU read lock.
        to_result(unsafe {
            bindings::kill_pid_usb_asyncio(signal, 0, value, self.0.as_ptr(), cred.as_ptr())
        })
    }

    /// Whether the process is gone or exiting (`PF_EXITING`).
    pub(crate) fn is_exiting(&self) -> bool {
        self.task_flags()
            .is_none_or(|f| f & bindings::PF_EXITING != 0)
    }
}

/// The caller's credentials, with a reference of our own. 7.3's [`Credential`] has no
/// constructor for them, and `get_current_cred()` is a macro over a field of `task_struct`;
/// `get_task_cred` (exported) gives the same credentials outside of a temporary
/// `override_creds()`, which no ioctl runs under.
pub(crate) fn current_cred() -> Result<ARef<Credential>> {
    // SAFETY: `current` is a live task; `get_task_cred` returns its credentials with a new
    // reference.
    let cred = unsafe { bindings::get_task_cred(Task::current_raw()) };
    let cred = NonNull::new(cred.cast_mut()).ok_or(ESRCH)?;
    // SAFETY: the reference taken above is ours, and `Credential` is a transparent
    // `struct cred`.
    Ok(unsafe { ARef::from_raw(cred.cast()) })
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

impl Eq for Process {}

/// By the address of the `struct pid`: an order for search trees, meaningless otherwise.
impl Ord for Process {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Process {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
