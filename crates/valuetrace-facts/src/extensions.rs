//! Summaries a consumer keeps with a segment: the fact engine stores them and counts their
//! bytes against the cache's budget, but knows nothing of what they hold.
//!
//! A summary is any `Send + Sync` type implementing [`SegExtension`]; a segment holds at most one
//! of each type, made on first use ([`SegExtensions::get_or_init`]) or by the cache's build hook
//! ([`crate::FactsCache::on_build`]), and dropped with the segment.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};

/// A per-segment summary kept by the fact cache.
pub trait SegExtension: Any + Send + Sync {
    /// Heap bytes, for the cache's budget.
    fn bytes(&self) -> usize;
}

/// The summaries of one segment, one per type.
#[derive(Default)]
pub struct SegExtensions(Mutex<Vec<(TypeId, Arc<dyn SegExtension>)>>);

impl std::fmt::Debug for SegExtensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map_or(0, |items| items.len());
        write!(f, "SegExtensions({count} summaries)")
    }
}

impl SegExtensions {
    /// The summary of type `T`, if one was made.
    pub fn get<T: SegExtension>(&self) -> Option<Arc<T>> {
        let items = self.0.lock().ok()?;
        let (_, item) = items.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
        let any: Arc<dyn Any + Send + Sync> = item.clone();
        any.downcast::<T>().ok()
    }

    /// The summary of type `T`, made by `init` the first time (under the segment's lock: two
    /// threads never both make it).
    pub fn get_or_init<T: SegExtension>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut items = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, item)) = items.iter().find(|(id, _)| *id == TypeId::of::<T>()) {
            let any: Arc<dyn Any + Send + Sync> = item.clone();
            if let Ok(found) = any.downcast::<T>() {
                return found;
            }
        }
        let made = Arc::new(init());
        items.push((TypeId::of::<T>(), made.clone()));
        made
    }

    /// Bytes of every summary held.
    pub fn bytes(&self) -> usize {
        self.0
            .lock()
            .map_or(0, |items| items.iter().map(|(_, item)| item.bytes()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(usize);
    impl SegExtension for Count {
        fn bytes(&self) -> usize {
            self.0
        }
    }
    struct Other;
    impl SegExtension for Other {
        fn bytes(&self) -> usize {
            1
        }
    }

    #[test]
    fn one_summary_per_type_made_once() {
        let extensions = SegExtensions::default();
        assert!(extensions.get::<Count>().is_none());
        assert_eq!(extensions.get_or_init(|| Count(40)).0, 40);
        assert_eq!(extensions.get_or_init(|| Count(7)).0, 40, "made once");
        extensions.get_or_init(|| Other);
        assert_eq!(extensions.get::<Count>().map(|c| c.0), Some(40));
        assert_eq!(extensions.bytes(), 41);
    }
}
