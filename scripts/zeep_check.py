"""Calls every inbound method of eoms' CSS interface through its WSDL with zeep, a standard SOAP
client, against a running `eoms serve --demo` (山东's demo credentials). Exits non-zero on any
unexpected answer. Usage: python3 scripts/zeep_check.py http://127.0.0.1:8080"""
import sys
import zeep

base = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
client = zeep.Client(f"{base}/css/sd?wsdl")
svc = client.service
failures = []


def detail(fields):
    infos = "".join(
        f"<fieldInfo><fieldChName></fieldChName><fieldEnName>{k}</fieldEnName><fieldContent>{v}</fieldContent></fieldInfo>"
        for k, v in fields.items()
    )
    return f"<opDetail><recordInfo>{infos}</recordInfo></opDetail>"


def call(method, serial, fields, when, expect_ok=True, needle=None, short=False):
    if short:
        fields = dict(fields, serialNo=serial)
        args = dict(serSupplier="CSS", serCaller="SD_CSS", callerPwd="sd-css-demo", callTime=when, opDetail=detail(fields))
    else:
        args = dict(sheetType="complaint", serviceType="mobile", serialNo=serial, serSupplier="CSS", serCaller="SD_CSS",
                    callerPwd="sd-css-demo", callTime=when, attachRef="http://css.example/files/photo.jpg",
                    opPerson="坐席", opCorp="山东", opDepart="客服中心", opContact="10086", opTime=when,
                    opDetail=detail(fields))
    answer = getattr(svc, method)(**args)
    ok = (answer == "0") if expect_ok else (answer != "0" and (needle is None or needle in answer))
    print(f"{'ok ' if ok else 'BAD'} {method:17} {serial:12} -> {answer}")
    if not ok:
        failures.append(method)


new = {"complaintNum": "13812345678", "faultSite": "济南|历下区|泉城路", "complaintType1": "移网",
       "complaintType2": "网络使用", "complaintType3": "无信号", "complaintDesc": "室内无信号", "urgentDegree": "一般"}
print("isAlive ->", svc.isAlive(serCaller="SD_CSS", callerPwd="sd-css-demo", callTime="2026-01-01 00:00:00"))
call("newWorkSheet", "ZEEP-1", new, "2026-01-01 09:00:00")
call("newWorkSheet", "ZEEP-1", new, "2026-01-01 09:00:00")  # the same call again: answered as the first
call("newWorkSheet", "ZEEP-2", dict(new, urgentDegree="特急"), "2026-01-01 09:01:00", expect_ok=False, needle="urgentDegree")
call("suggestWorkSheet", "ZEEP-1", {"suggestion": "客户再次来电"}, "2026-01-01 09:05:00")
call("untreadWorkSheet", "ZEEP-1", {"untreadReason": "不满意"}, "2026-01-01 09:06:00", expect_ok=False, needle="untreadWorkSheet")
call("renewWorkSheet", "ZEEP-1", {"renewReason": "补充"}, "2026-01-01 09:07:00", expect_ok=False, needle="renewWorkSheet")
call("checkinWorkSheet", "ZEEP-1", {"closeSatisfyDegree": "满意"}, "2026-01-01 09:08:00", expect_ok=False, needle="checkinWorkSheet")
call("cancelWorkSheet", "ZEEP-1", {"cancelReason": "客户撤诉"}, "2026-01-01 09:09:00")
call("checkinWorkSheet", "ZEEP-1", {"closeSatisfyDegree": "满意"}, "2026-01-01 09:10:00", expect_ok=False, short=True)
call("newWorkSheet", "ZEEP-3", new, "2026-01-01 09:11:00", short=True)
if svc.isAlive(serCaller="SD_CSS", callerPwd="sd-css-demo", callTime="t") != "0":
    failures.append("isAlive")
if failures:
    print("zeep: unexpected answers from", ", ".join(failures))
    sys.exit(1)
print("zeep: every inbound method answered as expected")
