//! Placeholder until the page is built.

use super::Ctx;
use maud::{Markup, html};

pub async fn render(_ctx: &Ctx<'_>) -> Markup {
    html! { p.empty { "This page is being built." } }
}
