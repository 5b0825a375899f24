//! Criterion benches of the core span model: export slugs and row merging.

use std::hint::black_box;
use std::time::SystemTime;

use braintrust_core::event::{Event, SpanAttributes, SpanType};
use braintrust_core::id::IdFormat;
use braintrust_core::merge::merge_row_batch;
use braintrust_core::object::ObjectIds;
use braintrust_core::row::{Row, SpanIdentity};
use braintrust_core::span_components::{SlugObject, SlugVersion, SpanComponents, SpanRowIds};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn span_components(c: &mut Criterion) {
    let components = SpanComponents {
        object_type: braintrust_core::span_components::SpanObjectType::ProjectLogs,
        object: SlugObject::Id("747ebc7b-6a9b-597e-94f2-512cce481000".into()),
        row: Some(SpanRowIds {
            row_id: "23f03a8d-f60c-4f14-a901-5dd572d219dc".into(),
            span_id: "f1e94cab089b607b".into(),
            root_span_id: "ab0c3df062af36118ae7372f1b76955a".into(),
        }),
        propagated_event: None,
    };
    let slug = components.encode(SlugVersion::V4);
    c.bench_function("slug_encode_v4", |b| {
        b.iter(|| black_box(&components).encode(SlugVersion::V4));
    });
    c.bench_function("slug_parse_v4", |b| {
        b.iter(|| SpanComponents::parse(black_box(&slug)));
    });
}

/// Three rows per span (start, log, end), as a span produces them, for 100 spans.
fn span_rows() -> Vec<Row> {
    let project = ObjectIds::project_logs("747ebc7b-6a9b-597e-94f2-512cce481000");
    let root = SpanIdentity::root(IdFormat::Hex);
    let mut rows = Vec::new();
    for i in 0..100 {
        let id = root.child(IdFormat::Hex);
        let fields = Event::new()
            .input(json!({"i": i}))
            .into_fields()
            .unwrap_or_default();
        rows.push(Row::span_start(
            &id,
            &project,
            &SpanAttributes::named("step").with_type(SpanType::Task),
            None,
            SystemTime::now(),
            fields,
        ));
        let update = Event::new()
            .output(json!({"answer": i}))
            .metadata_entry("k", json!("v"))
            .into_fields()
            .unwrap_or_default();
        rows.push(Row::span_update(&id, &project, update));
        rows.push(Row::span_end(&id, &project, SystemTime::now()));
    }
    rows
}

fn merge_rows(c: &mut Criterion) {
    let rows = span_rows();
    c.bench_function("merge_rows_300_into_100", |b| {
        b.iter_batched(
            || rows.clone(),
            merge_row_batch,
            criterion::BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, span_components, merge_rows);
criterion_main!(benches);
