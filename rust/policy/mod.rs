// SPDX-License-Identifier: GPL-2.0

//! Policy: who may do what with pages (`access`), per-process pools and the scavenging protocol
//! (`pool`) with their shrinker, and where new allocations go (`placement`). It talks to banks
//! only through their public interface: their numbers, and blocks asked for through the pools'
//! admission.

pub(crate) mod access;
pub(crate) mod placement;
pub(crate) mod pool;
pub(crate) mod shrinker;
