#!/usr/bin/env bash
# Usage: scripts/kpi_bench.sh BASE_URL TOKEN RUNS MONTH_FROM MONTH_TO [YEAR_FROM YEAR_TO]
# (see docs/BENCHMARKS.md, "KPIs")
# Times KPI requests against a running eoms: N runs each, p50/p99 of curl's total time.
set -euo pipefail
base=$1; tok=$2; n=${3:-30}
run() {
  local name=$1 path=$2
  for i in $(seq 1 "$n"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "authorization: Bearer $tok" "$base$path"
  done | sort -n | awk -v name="$name" '{a[NR]=$1} END{p50=a[int((NR+1)/2)]; p99=a[int(NR*0.99+0.999)]; printf "%-45s p50 %7.1f ms  p99 %7.1f ms\n", name, p50*1000, p99*1000}'
}
run "province-month, by city (山东, one month)" "/api/v1/kpis?group_by=city&region=sd&created_from=$4&created_to=$5"
run "province-month, by category (山东, one month)" "/api/v1/kpis?group_by=category&region=sd&created_from=$4&created_to=$5"
run "province, all time, by city" "/api/v1/kpis?group_by=city&region=sd"
if [ -n "${6:-}" ]; then
  run "national year, by province" "/api/v1/kpis?group_by=province&created_from=$6&created_to=$7"
  run "national year, by month" "/api/v1/kpis?group_by=month&created_from=$6&created_to=$7"
  run "national year, by day" "/api/v1/kpis?group_by=day&created_from=$6&created_to=$7"
fi
run "national, all time, by province" "/api/v1/kpis?group_by=province"
run "national, all time, by month" "/api/v1/kpis?group_by=month"
run "national, all time, by department (tickets)" "/api/v1/kpis?group_by=department"
run "province-month, by source, department filter (tickets)" "/api/v1/kpis?group_by=source&region=sd&department=sd.jn.wy&created_from=$4&created_to=$5"
