//! How many WebSocket connections are open, per client and in all: a connection costs
//! memory for as long as it lasts, so no client may hold more than its share.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

/// The open connections of one instance, counted per client.
#[derive(Default)]
pub struct ConnectionSlots {
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<String, usize>,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Client,
    Instance,
}

impl ConnectionSlots {
    /// Takes a slot for a connection of `client`, given back when the slot is dropped.
    ///
    /// # Errors
    /// Which limit is reached.
    pub fn claim(
        self: &Arc<Self>,
        client: &str,
        per_client: usize,
        total: usize,
    ) -> Result<Slot, Full> {
        let mut open = self.lock();
        if open.total >= total {
            return Err(Full::Instance);
        }
        let count = open.per_client.entry(client.to_string()).or_default();
        if *count >= per_client {
            return Err(Full::Client);
        }
        *count += 1;
        open.total += 1;
        Ok(Slot {
            slots: self.clone(),
            client: client.to_string(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open connection's place.
pub struct Slot {
    slots: Arc<ConnectionSlots>,
    client: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.total -= 1;
        if let Some(count) = open.per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_share_and_the_instance_its_total() {
        let slots = Arc::new(ConnectionSlots::default());
        let first = slots.claim("a", 2, 3).unwrap();
        let _second = slots.claim("a", 2, 3).unwrap();

        assert_eq!(slots.claim("a", 2, 3).err(), Some(Full::Client));
        let _other = slots.claim("b", 2, 3).unwrap();
        assert_eq!(slots.claim("c", 2, 3).err(), Some(Full::Instance));

        drop(first);
        assert!(slots.claim("a", 2, 3).is_ok());
    }

    #[test]
    fn a_client_whose_connections_all_closed_is_forgotten() {
        let slots = Arc::new(ConnectionSlots::default());

        drop(slots.claim("a", 1, 1).unwrap());

        assert!(slots.lock().per_client.is_empty());
        assert_eq!(slots.lock().total, 0);
    }
}
