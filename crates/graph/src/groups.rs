//! Groups and their members.

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::client::{GraphClient, segment};
use crate::error::GraphError;
use crate::users::{GraphUser, Page, USER_SELECT, pages};

pub const GROUP_SELECT: &str = "id,displayName,description";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphGroup {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl GraphClient {
    pub async fn get_group(&self, id: &str) -> Result<GraphGroup, GraphError> {
        let url = self.url(&format!("groups/{}?$select={GROUP_SELECT}", segment(id)));
        self.get_json(&url, &[]).await
    }

    pub async fn groups_page(&self, next: Option<&str>) -> Result<Page<GraphGroup>, GraphError> {
        let url = match next {
            Some(link) => {
                self.check_link(link)?;
                link.to_string()
            }
            None => self.url(&format!(
                "groups?$select={GROUP_SELECT}&$top={}",
                self.page_size()
            )),
        };
        self.get_json(&url, &[]).await
    }

    /// Every group, one page at a time.
    pub fn groups(&self) -> impl Stream<Item = Result<Vec<GraphGroup>, GraphError>> + Send + '_ {
        pages(move |next| async move { self.groups_page(next.as_deref()).await })
    }

    /// One page of `GET /groups/{id}/members` (directory objects; non-users have no UPN).
    pub async fn group_members_page(
        &self,
        group_id: &str,
        next: Option<&str>,
    ) -> Result<Page<GraphUser>, GraphError> {
        let url = match next {
            Some(link) => {
                self.check_link(link)?;
                link.to_string()
            }
            None => self.url(&format!(
                "groups/{}/members?$select={USER_SELECT}&$top={}",
                segment(group_id),
                self.page_size()
            )),
        };
        self.get_json(&url, &[]).await
    }
}
