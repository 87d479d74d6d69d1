//! The runs list's retry groups: each first run followed by its automatic
//! retries, so a run that needed three attempts reads as one story rather than
//! three rows scattered by time.

use super::AppError;
use super::views::RunRow;
use crate::db::{self, Pool, Run};

/// `firsts` (a page of first attempts, in list order), each followed by its
/// later attempts marked `under_first`.
pub(super) async fn with_later_attempts(
    pool: &Pool,
    firsts: &[Run],
) -> Result<Vec<RunRow>, AppError> {
    let ids: Vec<String> = firsts.iter().map(|r| r.id.clone()).collect();
    let later = db::run_attempts::later_attempts(pool, &ids).await?;
    let mut rows = Vec::with_capacity(firsts.len() + later.len());
    for first in firsts {
        rows.push(RunRow::new(first));
        rows.extend(
            later
                .iter()
                .filter(|a| a.first_run_id == first.id)
                .map(|a| RunRow {
                    under_first: true,
                    ..RunRow::new(&a.run)
                }),
        );
    }
    Ok(rows)
}
