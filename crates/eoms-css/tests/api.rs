//! User-visible behaviour of the CSS interface protocol layer.

use eoms_css::{
    AttachRef, CssError, Field, INBOUND_METHODS, LONG_ARGS, MAX_MESSAGE_BYTES, NS, OUTBOUND_METHODS, SHORT_ARGS, fault,
    op_detail, parse_attach_ref, parse_call, parse_op_detail, parse_response, request, response, soap_action, wsdl,
    wsdl_outbound,
};

fn zh_detail() -> Vec<Field> {
    vec![
        Field::new("受理号码", "complaintNum", "13800000000"),
        Field::new("投诉内容", "complaintDesc", "室内<信号差> & 通话断续，\"尤其\" 晚上'8点'后\r\n第二行"),
        Field::new("", "faultSite", "杭州|西湖区|文三路"),
        Field::new("空内容", "preDealResult", ""),
    ]
}

fn long_args(detail: &str) -> Vec<(&'static str, &str)> {
    LONG_ARGS
        .iter()
        .map(|&a| match a {
            "sheetType" => (a, "1"),
            "serviceType" => (a, "0"),
            "serialNo" => (a, "ZJ-CSS-20240501-000123"),
            "serSupplier" => (a, "CSS"),
            "serCaller" => (a, "EOMS"),
            "callerPwd" => (a, "p&ss<word>"),
            "callTime" => (a, "2024-05-01 10:20:30"),
            "opPerson" => (a, "张三"),
            "opDetail" => (a, detail),
            _ => (a, ""),
        })
        .collect()
}

// ---------- round trips ----------

#[test]
fn request_round_trips_through_parse_call() {
    let detail = op_detail(&zh_detail());
    let args = long_args(&detail);
    let call = parse_call(request("newWorkSheet", &args).as_bytes()).unwrap();
    assert_eq!(call.method, "newWorkSheet");
    assert_eq!(call.args.len(), 14);
    for (name, value) in &args {
        assert_eq!(call.args[*name], *value, "{name}");
    }
    assert_eq!(call.arg("callerPwd"), Some("p&ss<word>"));
    assert_eq!(call.arg("attachRef"), None, "empty arguments read as absent");
    assert_eq!(call.arg("nonexistent"), None);
    assert_eq!(parse_op_detail(call.arg("opDetail").unwrap()).unwrap(), zh_detail());
}

#[test]
fn call_arg_trims() {
    let call =
        parse_call(request("suggestWorkSheet", &[("serialNo", "  A-1 \n"), ("opPerson", "   ")]).as_bytes()).unwrap();
    assert_eq!(call.arg("serialNo"), Some("A-1"));
    assert_eq!(call.args["serialNo"], "  A-1 \n", "args keep the raw text");
    assert_eq!(call.arg("opPerson"), None);
}

#[test]
fn response_round_trips_through_parse_response() {
    for result in ["0", "工单 ZJ-1 不存在 <无法受理> & 请核实", ""] {
        for method in INBOUND_METHODS.iter().chain(&OUTBOUND_METHODS) {
            let xml = response(method, result);
            assert!(xml.contains(&format!("<{method}Response xmlns=\"{NS}\"><{method}Return>")));
            assert_eq!(parse_response(xml.as_bytes()).unwrap(), result);
        }
    }
}

#[test]
fn op_detail_round_trips_with_chinese_and_markup_characters() {
    let fields = zh_detail();
    let xml = op_detail(&fields);
    assert!(xml.starts_with("<opDetail><recordInfo><fieldInfo><fieldChName>受理号码</fieldChName>"));
    assert!(xml.contains("室内&lt;信号差&gt; &amp; 通话断续"));
    assert_eq!(parse_op_detail(&xml).unwrap(), fields);
    assert_eq!(parse_op_detail(&op_detail(&[])).unwrap(), vec![]);
}

#[test]
fn fault_is_recognised_by_parse_response() {
    let xml = fault("soap:Server", "数据库暂不可用 <稍后重试>");
    assert_eq!(parse_response(xml.as_bytes()), Err(CssError::Fault("数据库暂不可用 <稍后重试>".to_owned())));
    let err = parse_response(xml.as_bytes()).unwrap_err();
    assert_eq!(err.message_zh(), "对方返回 SOAP Fault：数据库暂不可用 <稍后重试>");

    // A fault as another stack (Axis 1) writes it, with a detail block.
    let axis = r#"<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <soapenv:Fault>
   <faultcode>soapenv:Server.userException</faultcode>
   <faultstring>java.lang.NullPointerException</faultstring>
   <detail><ns1:hostname xmlns:ns1="http://xml.apache.org/axis/">css01</ns1:hostname></detail>
  </soapenv:Fault>
 </soapenv:Body>
</soapenv:Envelope>"#;
    assert_eq!(parse_response(axis.as_bytes()), Err(CssError::Fault("java.lang.NullPointerException".to_owned())));
}

#[test]
fn parse_response_reads_other_stacks() {
    // Axis 1 rpc/encoded response, whitespace and xsi:type.
    let axis = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <ns1:replyWorkSheetResponse soapenv:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/" xmlns:ns1="http://css.example.cn">
   <replyWorkSheetReturn xsi:type="xsd:string">0</replyWorkSheetReturn>
  </ns1:replyWorkSheetResponse>
 </soapenv:Body>
</soapenv:Envelope>"#;
    assert_eq!(parse_response(axis.as_bytes()).unwrap(), "0");
    // CXF style `return` element and a header.
    let cxf = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body><ns2:confirmWorkSheetResponse xmlns:ns2="urn:x"><return>serialNo 不存在</return></ns2:confirmWorkSheetResponse></soap:Body></soap:Envelope>"#;
    assert_eq!(parse_response(cxf.as_bytes()).unwrap(), "serialNo 不存在");
}

// ---------- realistic requests ----------

/// What an Axis 1.4 rpc/encoded CSS client sends: prefixes everywhere, xsi:type on every argument,
/// encodingStyle, opDetail escaped as text, CRLF line ends.
const AXIS_REQUEST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\r\n\
 <soapenv:Body>\r\n\
  <ns1:newWorkSheet soapenv:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:ns1=\"http://eoms.local/css/workorder\">\r\n\
   <sheetType xsi:type=\"xsd:string\">1</sheetType>\r\n\
   <serviceType xsi:type=\"xsd:string\">0</serviceType>\r\n\
   <serialNo xsi:type=\"xsd:string\">HZ20240501000123</serialNo>\r\n\
   <serSupplier xsi:type=\"xsd:string\">CSS</serSupplier>\r\n\
   <serCaller xsi:type=\"xsd:string\">EOMS</serCaller>\r\n\
   <callerPwd xsi:type=\"xsd:string\">secret</callerPwd>\r\n\
   <callTime xsi:type=\"xsd:string\">2024-05-01 10:20:30</callTime>\r\n\
   <attachRef xsi:type=\"xsd:string\" xsi:nil=\"true\"/>\r\n\
   <opPerson xsi:type=\"xsd:string\">&#24352;&#19977;</opPerson>\r\n\
   <opCorp xsi:type=\"xsd:string\">杭州分公司</opCorp>\r\n\
   <opDepart xsi:type=\"xsd:string\">客服中心</opDepart>\r\n\
   <opContact xsi:type=\"xsd:string\">0571-88888888</opContact>\r\n\
   <opTime xsi:type=\"xsd:string\">2024-05-01 10:20:00</opTime>\r\n\
   <opDetail xsi:type=\"xsd:string\">&lt;opDetail&gt;&lt;recordInfo&gt;&lt;fieldInfo&gt;&lt;fieldChName&gt;受理号码&lt;/fieldChName&gt;&lt;fieldEnName&gt;complaintNum&lt;/fieldEnName&gt;&lt;fieldContent&gt;13800000000&lt;/fieldContent&gt;&lt;/fieldInfo&gt;&lt;fieldInfo&gt;&lt;fieldChName&gt;投诉内容&lt;/fieldChName&gt;&lt;fieldEnName&gt;complaintDesc&lt;/fieldEnName&gt;&lt;fieldContent&gt;家里 &amp;amp; 公司都没信号&lt;/fieldContent&gt;&lt;/fieldInfo&gt;&lt;/recordInfo&gt;&lt;/opDetail&gt;</opDetail>\r\n\
  </ns1:newWorkSheet>\r\n\
 </soapenv:Body>\r\n\
</soapenv:Envelope>\r\n";

#[test]
fn axis1_rpc_encoded_request_parses() {
    let call = parse_call(AXIS_REQUEST.as_bytes()).unwrap();
    assert_eq!(call.method, "newWorkSheet");
    assert_eq!(call.args.len(), 14);
    assert_eq!(call.arg("serialNo"), Some("HZ20240501000123"));
    assert_eq!(call.arg("opPerson"), Some("张三"), "character references decoded");
    assert_eq!(call.arg("attachRef"), None);
    assert_eq!(call.arg("opCorp"), Some("杭州分公司"));
    let fields = parse_op_detail(call.arg("opDetail").unwrap()).unwrap();
    assert_eq!(
        fields,
        vec![
            Field::new("受理号码", "complaintNum", "13800000000"),
            Field::new("投诉内容", "complaintDesc", "家里 & 公司都没信号"),
        ]
    );
}

/// Captured from Python zeep 4.3.3 calling `wsdl()` (newWorkSheet, all 14 arguments).
const ZEEP_REQUEST: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><ns0:newWorkSheet xmlns:ns0="http://eoms.local/css/workorder"><ns0:sheetType>1</ns0:sheetType><ns0:serviceType>0</ns0:serviceType><ns0:serialNo>ZJ-1</ns0:serialNo><ns0:serSupplier>CSS</ns0:serSupplier><ns0:serCaller>EOMS</ns0:serCaller><ns0:callerPwd>pw</ns0:callerPwd><ns0:callTime>2024-05-01 10:00:00</ns0:callTime><ns0:attachRef>http://a.example/x.jpg</ns0:attachRef><ns0:opPerson>张三</ns0:opPerson><ns0:opCorp>杭州</ns0:opCorp><ns0:opDepart>客服</ns0:opDepart><ns0:opContact>0571</ns0:opContact><ns0:opTime>2024-05-01 10:00:00</ns0:opTime><ns0:opDetail>&lt;opDetail&gt;&lt;recordInfo&gt;&lt;fieldInfo&gt;&lt;fieldChName&gt;受理号码&lt;/fieldChName&gt;&lt;fieldEnName&gt;complaintNum&lt;/fieldEnName&gt;&lt;fieldContent&gt;13800000000 &amp;amp; &amp;lt;x&amp;gt;&lt;/fieldContent&gt;&lt;/fieldInfo&gt;&lt;/recordInfo&gt;&lt;/opDetail&gt;</ns0:opDetail></ns0:newWorkSheet></soap-env:Body></soap-env:Envelope>"#;

#[test]
fn zeep_request_parses() {
    let call = parse_call(ZEEP_REQUEST.as_bytes()).unwrap();
    assert_eq!(call.method, "newWorkSheet");
    assert_eq!(call.args.len(), 14);
    assert_eq!(call.arg("opPerson"), Some("张三"));
    assert_eq!(
        parse_op_detail(call.arg("opDetail").unwrap()).unwrap(),
        vec![Field::new("受理号码", "complaintNum", "13800000000 & <x>")]
    );
    assert_eq!(
        parse_attach_ref(call.arg("attachRef").unwrap()).unwrap(),
        vec![AttachRef { name: "x.jpg".into(), url: "http://a.example/x.jpg".into() }]
    );
}

#[test]
fn axis1_positional_argument_names_are_mapped() {
    let long: Vec<(String, String)> = (0..14).map(|i| (format!("in{i}"), format!("v{i}"))).collect();
    let args: Vec<(&str, &str)> = long.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let call = parse_call(request("newWorkSheet", &args).as_bytes()).unwrap();
    assert_eq!(call.arg("sheetType"), Some("v0"));
    assert_eq!(call.arg("opDetail"), Some("v13"));
    assert!(!call.args.contains_key("in0"));

    let short: Vec<(String, String)> = (0..5).map(|i| (format!("arg{i}"), format!("v{i}"))).collect();
    let args: Vec<(&str, &str)> = short.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let call = parse_call(request("isAlive", &args).as_bytes()).unwrap();
    assert_eq!(call.args.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut v = SHORT_ARGS.to_vec();
        v.sort_unstable();
        v
    });
    assert_eq!(call.arg("opDetail"), Some("v4"));
}

#[test]
fn cdata_op_detail_parses() {
    let xml = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><newWorkSheet xmlns="http://eoms.local/css/workorder"><serialNo>X1</serialNo><opDetail><![CDATA[<opDetail>
  <recordInfo>
    <fieldInfo><fieldChName>受理号码</fieldChName><fieldEnName>complaintNum</fieldEnName><fieldContent>13900000000</fieldContent></fieldInfo>
  </recordInfo>
  <recordInfo>
    <fieldInfo><fieldEnName>complaintDesc</fieldEnName><fieldContent>a &lt; b</fieldContent></fieldInfo>
  </recordInfo>
</opDetail>]]></opDetail></newWorkSheet></S:Body></S:Envelope>"#;
    let call = parse_call(xml.as_bytes()).unwrap();
    assert!(call.args["opDetail"].starts_with("<opDetail>"), "CDATA content is the argument text");
    let fields = parse_op_detail(call.arg("opDetail").unwrap()).unwrap();
    assert_eq!(
        fields,
        vec![Field::new("受理号码", "complaintNum", "13900000000"), Field::new("", "complaintDesc", "a < b"),],
        "several recordInfo blocks are concatenated; missing fieldChName is fine"
    );
}

#[test]
fn unescaped_embedded_op_detail_is_still_readable() {
    let xml = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><tns:suggestWorkSheet xmlns:tns="http://eoms.local/css/workorder"><tns:serialNo>X1</tns:serialNo><tns:opDetail><recordInfo><fieldInfo><fieldChName>补充</fieldChName><fieldEnName>suggestion</fieldEnName><fieldContent>请尽快 &amp; 处理</fieldContent></fieldInfo></recordInfo></tns:opDetail></tns:suggestWorkSheet></soap:Body></soap:Envelope>"#;
    let call = parse_call(xml.as_bytes()).unwrap();
    assert_eq!(
        parse_op_detail(call.arg("opDetail").unwrap()).unwrap(),
        vec![Field::new("补充", "suggestion", "请尽快 & 处理")]
    );
}

#[test]
fn five_argument_form_parses() {
    let detail = op_detail(&[Field::new("满意度", "closeSatisfyDegree", "满意")]);
    let args: Vec<(&str, &str)> =
        SHORT_ARGS.iter().map(|&a| (a, if a == "opDetail" { detail.as_str() } else { "x" })).collect();
    let call = parse_call(request("checkinWorkSheet", &args).as_bytes()).unwrap();
    assert_eq!(call.method, "checkinWorkSheet");
    assert_eq!(call.args.len(), 5);
    assert_eq!(call.arg("serialNo"), None, "the caller decides what a missing serialNo means");
    assert_eq!(parse_op_detail(call.arg("opDetail").unwrap()).unwrap()[0].content, "满意");
}

#[test]
fn method_without_arguments_and_headers_parse() {
    let xml = r#"<?xml version='1.0' encoding='utf-8'?>
<!-- a comment -->
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
  <env:Header><wsse:Security xmlns:wsse="urn:wsse"><x>ignored</x></wsse:Security></env:Header>
  <env:Body><isAlive/></env:Body>
</env:Envelope>"#;
    let call = parse_call(xml.as_bytes()).unwrap();
    assert_eq!(call.method, "isAlive");
    assert!(call.args.is_empty());
}

#[test]
fn utf8_bom_is_accepted() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(request("isAlive", &[("serialNo", "1")]).as_bytes());
    assert_eq!(parse_call(&bytes).unwrap().arg("serialNo"), Some("1"));
}

// ---------- refusals ----------

fn malformed(body: &[u8]) -> String {
    match parse_call(body) {
        Err(e @ CssError::Malformed(_)) => e.message_zh(),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_xml_is_refused_with_a_position() {
    let xml = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<soap:Body>\n<isAlive></isAlve>\n</soap:Body></soap:Envelope>";
    let msg = malformed(xml.as_bytes());
    assert!(msg.starts_with("报文不是合法的 XML：第 3 行"), "{msg}");
    assert!(msg.contains("</isAlve>") && msg.contains("<isAlive>"), "{msg}");

    let msg = malformed(b"<a b></a>");
    assert!(msg.contains("第 1 行") && msg.contains("属性"), "{msg}");
    let msg = malformed(b"<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><m>&nbsp;</m></soap:Body></soap:Envelope>");
    assert!(msg.contains("未定义的实体引用 &nbsp;"), "{msg}");
    assert!(malformed(b"hello").contains("根元素之外出现文本"));
    assert_eq!(malformed(b"  "), "报文为空");
}

#[test]
fn truncated_message_is_refused() {
    let full = request("newWorkSheet", &long_args("<opDetail/>"));
    for cut in [full.len() - 1, full.len() - 20, full.len() / 2, 60] {
        let msg = malformed(&full.as_bytes()[..cut]);
        assert!(msg.starts_with("报文不是合法的 XML："), "{msg}");
        assert!(msg.contains("截断"), "cut at {cut}: {msg}");
    }
}

#[test]
fn non_soap_envelopes_are_refused() {
    let msg = malformed(b"<newWorkSheet><serialNo>1</serialNo></newWorkSheet>");
    assert_eq!(msg, "报文不是 SOAP 1.1 信封：根元素是 <newWorkSheet>");
    let soap12 =
        br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><isAlive/></e:Body></e:Envelope>"#;
    assert_eq!(malformed(soap12), "报文是 SOAP 1.2 信封，本接口只接受 SOAP 1.1");
    let no_body = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/></s:Envelope>"#;
    assert_eq!(malformed(no_body), "报文缺少 soap:Body 元素");
    let empty_body =
        br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body> </s:Body></s:Envelope>"#;
    assert_eq!(malformed(empty_body), "报文的 soap:Body 中没有方法元素");
}

#[test]
fn non_utf8_is_refused() {
    // "张三" in GBK.
    let mut body =
        b"<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<soap:Body><isAlive><opPerson>"
            .to_vec();
    body.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]);
    body.extend_from_slice(b"</opPerson></isAlive></soap:Body></soap:Envelope>");
    let msg = malformed(&body);
    assert!(msg.starts_with("报文不是 UTF-8 编码：第 2 行第 31 列（第 102 字节）"), "{msg}");

    let declared = r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><isAlive><opPerson>张三</opPerson></isAlive></soap:Body></soap:Envelope>"#;
    assert_eq!(malformed(declared.as_bytes()), "报文声明的编码 GBK 不受支持，只接受 UTF-8");
    // A UTF-16 body (with BOM) is not UTF-8 either.
    let utf16: Vec<u8> = "\u{feff}<a/>".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert!(malformed(&utf16).starts_with("报文不是 UTF-8 编码"));
}

#[test]
fn oversize_is_refused() {
    let filler = "x".repeat(MAX_MESSAGE_BYTES);
    let body = request("newWorkSheet", &[("opDetail", &filler)]);
    let err = parse_call(body.as_bytes()).unwrap_err();
    assert_eq!(err, CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    assert_eq!(err.message_zh(), "报文超过 2MB 上限");
    assert_eq!(parse_response(body.as_bytes()).unwrap_err(), CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    let over = format!("{filler}x");
    assert_eq!(parse_op_detail(&over).unwrap_err(), CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    assert_eq!(parse_attach_ref(&over).unwrap_err(), CssError::TooLarge { limit: MAX_MESSAGE_BYTES });
    // Exactly at the limit is still read.
    let at_limit = request("isAlive", &[("opDetail", "")]);
    let padded = format!("{at_limit}{}", " ".repeat(MAX_MESSAGE_BYTES - at_limit.len()));
    assert_eq!(padded.len(), MAX_MESSAGE_BYTES);
    assert_eq!(parse_call(padded.as_bytes()).unwrap().method, "isAlive");
}

#[test]
fn deep_nesting_is_refused() {
    let depth_ok = 32 - 3; // Envelope, Body, method
    let nest = |n: usize| format!("{}{}", "<d>".repeat(n), "</d>".repeat(n));
    let ok = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><m>{}</m></s:Body></s:Envelope>",
        nest(depth_ok)
    );
    assert!(parse_call(ok.as_bytes()).is_ok());
    let deep = ok.replacen("<m>", "<m><d>", 1).replacen("</m>", "</d></m>", 1);
    assert_eq!(malformed(deep.as_bytes()), "报文元素嵌套超过 32 层，拒绝处理");
    let very_deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    assert_eq!(malformed(very_deep.as_bytes()), "报文元素嵌套超过 32 层，拒绝处理");

    let detail = format!("<opDetail>{}</opDetail>", nest(40));
    let err = parse_op_detail(&detail).unwrap_err();
    assert_eq!(err.message_zh(), "opDetail 格式错误：元素嵌套超过 32 层");
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><newWorkSheet><serialNo>&lol9;</serialNo></newWorkSheet></soap:Body></soap:Envelope>"#;

const XXE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><newWorkSheet><serialNo>&e;</serialNo></newWorkSheet></soap:Body></soap:Envelope>"#;

#[test]
fn billion_laughs_and_xxe_are_refused() {
    for payload in [BILLION_LAUGHS, XXE] {
        let err = parse_call(payload.as_bytes()).unwrap_err();
        assert_eq!(err, CssError::DtdRefused);
        assert!(err.message_zh().contains("DOCTYPE/ENTITY"), "{}", err.message_zh());
        assert!(err.message_zh().contains("拒绝"));
        assert_eq!(parse_response(payload.as_bytes()).unwrap_err(), CssError::DtdRefused);
    }
    // Inside opDetail (escaped in the message, so only parse_op_detail sees it) and attachRef.
    let detail = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><opDetail><recordInfo><fieldInfo><fieldEnName>a</fieldEnName><fieldContent>&e;</fieldContent></fieldInfo></recordInfo></opDetail>"#;
    let call = parse_call(request("newWorkSheet", &[("opDetail", detail)]).as_bytes()).unwrap();
    assert_eq!(parse_op_detail(call.arg("opDetail").unwrap()), Err(CssError::DtdRefused));
    let attach = r#"<!DOCTYPE attachRef [<!ENTITY e SYSTEM "http://evil/">]><attachRef><attachInfo><attachURL>&e;</attachURL></attachInfo></attachRef>"#;
    assert_eq!(parse_attach_ref(attach), Err(CssError::DtdRefused));
    // Lower-case, unterminated or stray declarations are refused the same way.
    assert_eq!(parse_call(b"<!doctype x><a/>"), Err(CssError::DtdRefused));
    assert_eq!(parse_call(b"<!DOCTYPE x [<!ENTITY e"), Err(CssError::DtdRefused));
    assert_eq!(parse_op_detail("<opDetail><!ENTITY e \"x\"></opDetail>"), Err(CssError::DtdRefused));
}

// ---------- opDetail ----------

#[test]
fn op_detail_errors_name_the_position() {
    let xml = "<opDetail><recordInfo><fieldInfo><fieldEnName>a</fieldEnName></fieldInfo></recordInfo>\
               <recordInfo><fieldInfo><fieldEnName>b</fieldEnName></fieldInfo><fieldInfo><fieldChName>受理号码</fieldChName><fieldContent>1</fieldContent></fieldInfo></recordInfo></opDetail>";
    let err = parse_op_detail(xml).unwrap_err();
    assert!(matches!(err, CssError::BadDetail(_)));
    assert_eq!(err.message_zh(), "opDetail 格式错误：缺少 fieldEnName（第 2 个 recordInfo 的第 2 个 fieldInfo）");

    let blank = "<opDetail><recordInfo><fieldInfo><fieldEnName> </fieldEnName></fieldInfo></recordInfo></opDetail>";
    assert_eq!(
        parse_op_detail(blank).unwrap_err().message_zh(),
        "opDetail 格式错误：fieldEnName 为空（第 1 个 recordInfo 的第 1 个 fieldInfo）"
    );
    let wrong_root = parse_op_detail("<detail><a/></detail>").unwrap_err();
    assert_eq!(wrong_root.message_zh(), "opDetail 格式错误：根元素应为 <opDetail>，实际为 <detail>");
    let not_xml = parse_op_detail("complaintNum=138").unwrap_err();
    assert!(matches!(not_xml, CssError::BadDetail(_)));
    assert!(
        not_xml.message_zh().starts_with("opDetail 格式错误：不是合法的 XML（第 1 行第 1 列"),
        "{}",
        not_xml.message_zh()
    );
    let broken = parse_op_detail("<opDetail><recordInfo></opDetail>").unwrap_err();
    assert!(broken.message_zh().contains("不匹配"), "{}", broken.message_zh());
}

#[test]
fn op_detail_lenient_forms() {
    assert_eq!(parse_op_detail("").unwrap(), vec![]);
    assert_eq!(parse_op_detail("  \n ").unwrap(), vec![]);
    assert_eq!(parse_op_detail("<opDetail/>").unwrap(), vec![]);
    let bare = "<?xml version=\"1.0\" encoding=\"GBK\"?><recordInfo><fieldInfo><fieldEnName> netType </fieldEnName><fieldContent>4G</fieldContent><extra/></fieldInfo></recordInfo>";
    assert_eq!(parse_op_detail(bare).unwrap(), vec![Field::new("", "netType", "4G")]);
    let loose = "<opDetail><fieldInfo><fieldEnName>a</fieldEnName></fieldInfo><note>x</note></opDetail>";
    assert_eq!(parse_op_detail(loose).unwrap(), vec![Field::new("", "a", "")]);
}

// ---------- attachRef ----------

#[test]
fn attach_ref_xml_form() {
    let xml = r#"<attachRef>
  <attachInfo><attachName>现场照片.jpg</attachName><attachURL>http://css.example.cn/files/1.jpg?a=1&amp;b=2</attachURL><attachLength>1024</attachLength></attachInfo>
  <attachInfo><attachURL> https://css.example.cn/dl/%E5%BD%95%E9%9F%B3.mp3 </attachURL></attachInfo>
</attachRef>"#;
    assert_eq!(
        parse_attach_ref(xml).unwrap(),
        vec![
            AttachRef { name: "现场照片.jpg".into(), url: "http://css.example.cn/files/1.jpg?a=1&b=2".into() },
            AttachRef { name: "录音.mp3".into(), url: "https://css.example.cn/dl/%E5%BD%95%E9%9F%B3.mp3".into() },
        ]
    );
    let missing = parse_attach_ref("<attachRef><attachInfo><attachName>a</attachName></attachInfo></attachRef>");
    assert_eq!(missing.unwrap_err().message_zh(), "attachRef 格式错误：第 1 个 attachInfo 缺少 attachURL");
}

#[test]
fn attach_ref_plain_list_form() {
    let list = " http://a.example/x/report.pdf;https://b.example/y/photo.png?sig=1,\nHTTP://c.example/\thttps://d.example/z%2F..%2Fpasswd ";
    assert_eq!(
        parse_attach_ref(list).unwrap(),
        vec![
            AttachRef { name: "report.pdf".into(), url: "http://a.example/x/report.pdf".into() },
            AttachRef { name: "photo.png".into(), url: "https://b.example/y/photo.png?sig=1".into() },
            AttachRef { name: "HTTP://c.example/".into(), url: "HTTP://c.example/".into() },
            AttachRef { name: "z%2F..%2Fpasswd".into(), url: "https://d.example/z%2F..%2Fpasswd".into() },
        ]
    );
    assert_eq!(parse_attach_ref("").unwrap(), vec![]);
    assert_eq!(parse_attach_ref(" ; , ").unwrap(), vec![]);
}

#[test]
fn attach_ref_refuses_non_http_urls() {
    let err = parse_attach_ref("http://ok.example/a.jpg;file:///etc/passwd").unwrap_err();
    assert!(matches!(err, CssError::BadDetail(_)));
    assert_eq!(
        err.message_zh(),
        "attachRef 格式错误：第 2 个附件地址 file:///etc/passwd 不是 http/https 地址，拒绝处理"
    );
    let xml = "<attachRef><attachInfo><attachName>p</attachName><attachURL>file:///etc/passwd</attachURL></attachInfo></attachRef>";
    assert!(matches!(parse_attach_ref(xml), Err(CssError::BadDetail(_))));
    for bad in ["ftp://x/a", "http://", "https:///path", "javascript:alert(1)", "\\\\server\\share\\a.jpg"] {
        assert!(matches!(parse_attach_ref(bad), Err(CssError::BadDetail(_))), "{bad}");
    }
}

// ---------- writers and WSDL ----------

#[test]
fn writers_escape_everything() {
    let req = request("replyWorkSheet", &[("opDesc", "]]></opDesc><x>&")]);
    assert!(req.contains("<opDesc>]]&gt;&lt;/opDesc&gt;&lt;x&gt;&amp;</opDesc>"), "{req}");
    let f = fault("soap:Client", "<b>&");
    assert!(f.contains("<faultcode>soap:Client</faultcode><faultstring>&lt;b&gt;&amp;</faultstring>"), "{f}");
    // Characters XML 1.0 cannot carry become U+FFFD instead of breaking the document.
    let r = response("isAlive", "a\u{1}b");
    assert_eq!(parse_response(r.as_bytes()).unwrap(), "a\u{FFFD}b");
}

#[test]
fn soap_action_is_quoted_namespace_slash_method() {
    assert_eq!(soap_action("newWorkSheet"), "\"http://eoms.local/css/workorder/newWorkSheet\"");
}

#[test]
fn wsdl_describes_the_interface() {
    let endpoint = "https://eoms.example.cn/css/ws?province=zj&v=1";
    let doc = wsdl(endpoint);
    assert!(doc.contains(r#"<soap:address location="https://eoms.example.cn/css/ws?province=zj&amp;v=1"/>"#));
    assert!(doc.contains(r#"targetNamespace="http://eoms.local/css/workorder""#));
    assert!(doc.contains(r#"elementFormDefault="qualified""#));
    for m in INBOUND_METHODS {
        assert!(doc.contains(&format!(r#"<xsd:element name="{m}">"#)), "{m}");
        assert!(doc.contains(&format!(r#"<xsd:element name="{m}Return" type="xsd:string"/>"#)), "{m}");
        assert!(doc.contains(&format!(r#"soapAction="http://eoms.local/css/workorder/{m}""#)), "{m}");
    }
    for m in OUTBOUND_METHODS {
        assert!(!doc.contains(m));
    }
    assert_eq!(doc.matches(r#"type="xsd:string" minOccurs="0"/>"#).count(), 7 * 14);
    assert_eq!(doc.matches("<wsdl:portType ").count(), 1);
    assert_eq!(doc.matches("<wsdl:binding ").count(), 1);
    assert_eq!(doc.matches("<wsdl:service ").count(), 1);

    let out = wsdl_outbound("http://css.example.cn/services/EomsCallback");
    for m in OUTBOUND_METHODS {
        assert!(out.contains(&format!(r#"<wsdl:operation name="{m}">"#)), "{m}");
    }
    assert_eq!(out.matches(r#"type="xsd:string" minOccurs="0"/>"#).count(), 4 * 14);
    assert!(!out.contains("newWorkSheet"));
}
