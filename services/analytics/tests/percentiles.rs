//! The reports rank durations with PostgreSQL's `percentile_disc`; it must pick the same
//! value as the nearest-rank definition of `domain::stats::percentile` (the ⌈p·n⌉-th
//! smallest) on every size, ties and duplicates included. Needs PostgreSQL.

use redress_analytics::domain::spike::Synthetic;
use redress_analytics::domain::stats::percentile;

#[tokio::test]
async fn percentile_disc_is_nearest_rank() {
    let db = redress_testkit::TestDatabase::start().await.unwrap();
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let mut g = Synthetic::new(11);
    for n in 1..=40u32 {
        // Few distinct values, so that ties are common.
        let values: Vec<i64> = (0..n).map(|_| i64::from(g.poisson(6.0))).collect();
        let (p50, p90): (i64, i64) = sqlx::query_as(
            "SELECT (p)[1], (p)[2]
             FROM (SELECT percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v) AS p
                   FROM unnest($1::bigint[]) v) s",
        )
        .bind(&values)
        .fetch_one(&pool)
        .await
        .unwrap();
        let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        assert_eq!(
            (Some(p50 as f64), Some(p90 as f64)),
            (percentile(&floats, 0.5), percentile(&floats, 0.9)),
            "{values:?}"
        );
    }
}
