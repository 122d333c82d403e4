use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use url::Url;

/// An object-store registry that knows exactly one store, the lake, and refuses to learn
/// others: a session cannot read `file:///etc/passwd` or an arbitrary URL even if some SQL
/// path tried.
#[derive(Debug)]
pub(crate) struct LakeOnly {
    url: Url,
    store: Arc<dyn ObjectStore>,
}

impl LakeOnly {
    pub(crate) fn new(url: Url, store: Arc<dyn ObjectStore>) -> Self {
        Self { url, store }
    }
}

impl ObjectStoreRegistry for LakeOnly {
    fn register_store(
        &self,
        _url: &Url,
        _store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        // Registration is a no-op: nothing but the lake is ever reachable.
        None
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if url.scheme() == self.url.scheme() && url.host_str() == self.url.host_str() {
            Ok(self.store.clone())
        } else {
            Err(DataFusionError::Plan(
                "only tables of the granted release can be read".into(),
            ))
        }
    }
}
