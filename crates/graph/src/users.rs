//! Users: get one, list all (`$select`, `$top` ≤ 999, `@odata.nextLink`).

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::client::{GraphClient, segment};
use crate::error::GraphError;

/// The user properties Behalf stores.
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,department,accountEnabled";

/// A directory user, as far as Behalf cares. Delta answers may carry only the changed properties,
/// so everything but `id` is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
}

/// One page of a collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
}

impl GraphClient {
    /// `GET /users/{id | userPrincipalName}` with the properties Behalf stores.
    pub async fn get_user(&self, id_or_upn: &str) -> Result<GraphUser, GraphError> {
        let url = self.url(&format!(
            "users/{}?$select={USER_SELECT}",
            segment(id_or_upn)
        ));
        self.get_json(&url, &[]).await
    }

    /// One page of `GET /users`: the first when `next` is `None`, else the given nextLink.
    pub async fn users_page(&self, next: Option<&str>) -> Result<Page<GraphUser>, GraphError> {
        let url = match next {
            Some(link) => {
                self.check_link(link)?;
                link.to_string()
            }
            None => self.url(&format!(
                "users?$select={USER_SELECT}&$top={}",
                self.page_size()
            )),
        };
        self.get_json(&url, &[]).await
    }

    /// Every user, one page at a time (memory holds one page).
    pub fn users(&self) -> impl Stream<Item = Result<Vec<GraphUser>, GraphError>> + Send + '_ {
        pages(move |next| async move { self.users_page(next.as_deref()).await })
    }
}

/// Turns a page fetcher into a stream of pages that ends after the page without a nextLink.
pub(crate) fn pages<'a, T, F, Fut>(
    fetch: F,
) -> impl Stream<Item = Result<Vec<T>, GraphError>> + Send + 'a
where
    T: Send + 'a,
    F: Fn(Option<String>) -> Fut + Send + Sync + 'a,
    Fut: std::future::Future<Output = Result<Page<T>, GraphError>> + Send + 'a,
{
    // State: None = finished, Some(None) = first page, Some(Some(link)) = next page.
    futures::stream::try_unfold((Some(None::<String>), fetch), |(state, fetch)| async move {
        let Some(next) = state else {
            return Ok(None);
        };
        let page = fetch(next).await?;
        let state = page.next_link.map(Some);
        Ok(Some((page.value, (state, fetch))))
    })
}
