use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use eoms_export::{Cell, Exporter, Format};

/// A writer that keeps nothing and counts what it is given, shared with the test.
#[derive(Clone, Default)]
struct CountingSink(Arc<AtomicU64>);

impl CountingSink {
    fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `rows` rows of varied content, sampling the bytes out every `every` rows; returns the samples, the
/// bytes out just before `finish` and the total.
fn large_export(format: Format, rows: i64, every: i64) -> (Vec<u64>, u64, u64) {
    let sink = CountingSink::default();
    let mut exporter =
        Exporter::new(format, sink.clone(), "大导出", &["工单号", "标题", "地市", "金额", "状态"]).expect("new");
    let cities = ["北京", "上海", "广州", "深圳", "成都", "武汉", "西安"];
    let mut samples = Vec::new();
    for i in 1..=rows {
        let title = format!("投诉工单 {i}: 用户反映 {} 信号差, 编号 {:x}", cities[(i % 7) as usize], i * 2_654_435_761);
        let row = [
            Cell::Integer(i),
            Cell::Text(&title),
            Cell::Text(cities[(i % 7) as usize]),
            Cell::Number((i % 1000) as f64 / 8.0),
            Cell::Text(if i % 3 == 0 { "已关闭" } else { "处理中" }),
        ];
        exporter.row(&row).expect("row");
        if i % every == 0 {
            samples.push(sink.bytes());
        }
    }
    let before_finish = sink.bytes();
    exporter.finish().expect("finish");
    (samples, before_finish, sink.bytes())
}

#[test]
fn xlsx_output_grows_while_rows_are_written_and_little_is_held_back() {
    let (samples, before_finish, total) = large_export(Format::Xlsx, 200_000, 20_000);
    assert!(samples[0] > 64 * 1024, "the first 20,000 rows are already out: {samples:?}");
    assert!(samples.windows(2).all(|w| w[0] < w[1]), "output grows with every batch of rows: {samples:?}");
    // All that is held back at any time is the deflate encoder's window and buffer, not rows.
    assert!(total - before_finish < 256 * 1024, "finish wrote {} of {total} bytes", total - before_finish);
    assert!(total > 2 * 1024 * 1024, "200,000 rows make megabytes even deflated: {total}");
}

#[test]
fn csv_rows_go_out_as_they_are_written() {
    let (samples, before_finish, total) = large_export(Format::Csv, 100_000, 10_000);
    assert!(samples.windows(2).all(|w| w[0] < w[1]), "output grows with every batch of rows: {samples:?}");
    // CSV holds nothing back: each row is written out whole before `row` returns.
    assert_eq!(before_finish, total);
    assert_eq!(samples.last(), Some(&total));
}
