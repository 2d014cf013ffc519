//! The WSDL 1.1 descriptions (SOAP 1.1, document/literal wrapped) of both directions of the interface.

use std::fmt::Write as _;

use crate::xml::{escape, escape_attr};
use crate::{INBOUND_METHODS, LONG_ARGS, NS, OUTBOUND_METHODS, soap_action_uri};

/// The WSDL of the interface EOMS serves to CSS at `endpoint` (a full URL, escaped into the document).
///
/// SOAP 1.1, document/literal wrapped: one portType (`EomsWorkSheet`), binding (`EomsWorkSheetSoapBinding`)
/// and service (`EomsWorkSheetService`, port `EomsWorkSheetPort`); the 7 [`INBOUND_METHODS`]; each request
/// element (named like the method) is a sequence of the 14 [`LONG_ARGS`] as `xsd:string` with
/// `minOccurs="0"` (so the 5-argument form validates too); each response element `{method}Response` holds
/// one `{method}Return` `xsd:string`. Elements are qualified in [`NS`]. Each operation's soapAction is
/// [`soap_action_uri`] (`NS/method`); EOMS dispatches on the body element, not on the SOAPAction header.
pub fn wsdl(endpoint: &str) -> String {
    generate(
        endpoint,
        "EomsWorkSheet",
        &INBOUND_METHODS,
        "EOMS 提供给省分客服系统（CSS）的投诉工单接口：CSS 调用 EOMS。SOAP 1.1，document/literal wrapped，\
         参数和返回值均为字符串；返回 \"0\" 表示成功，其他内容为错误说明。SOAPAction 为命名空间/方法名，EOMS 不依赖它。",
    )
}

/// The WSDL of the interface a CSS system serves to EOMS (the 4 [`OUTBOUND_METHODS`], same shape as
/// [`wsdl`]; portType `CssWorkSheet`, binding `CssWorkSheetSoapBinding`, service `CssWorkSheetService`,
/// port `CssWorkSheetPort`), for CSS implementers and the simulator.
pub fn wsdl_outbound(endpoint: &str) -> String {
    generate(
        endpoint,
        "CssWorkSheet",
        &OUTBOUND_METHODS,
        "省分客服系统（CSS）需要提供给 EOMS 的工单回调接口：EOMS 调用 CSS。SOAP 1.1，document/literal wrapped，\
         参数和返回值均为字符串；应返回 \"0\" 表示成功，其他内容为错误说明（EOMS 会重试）。",
    )
}

fn generate(endpoint: &str, base: &str, methods: &[&str], documentation: &str) -> String {
    let mut w = String::with_capacity(16 * 1024);
    // `write!` into a String cannot fail.
    let _ = write!(
        w,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}" targetNamespace="{NS}" name="{base}Service">
  <wsdl:documentation>{doc}</wsdl:documentation>
  <wsdl:types>
    <xsd:schema targetNamespace="{NS}" elementFormDefault="qualified">
"#,
        doc = escape(documentation)
    );
    for m in methods {
        let _ = writeln!(w, r#"      <xsd:element name="{m}">"#);
        w.push_str("        <xsd:complexType>\n          <xsd:sequence>\n");
        for a in LONG_ARGS {
            let _ = writeln!(w, r#"            <xsd:element name="{a}" type="xsd:string" minOccurs="0"/>"#);
        }
        w.push_str("          </xsd:sequence>\n        </xsd:complexType>\n      </xsd:element>\n");
        let _ = writeln!(
            w,
            r#"      <xsd:element name="{m}Response">
        <xsd:complexType>
          <xsd:sequence>
            <xsd:element name="{m}Return" type="xsd:string"/>
          </xsd:sequence>
        </xsd:complexType>
      </xsd:element>"#
        );
    }
    w.push_str("    </xsd:schema>\n  </wsdl:types>\n");
    for m in methods {
        let _ = writeln!(
            w,
            r#"  <wsdl:message name="{m}Request">
    <wsdl:part name="parameters" element="tns:{m}"/>
  </wsdl:message>
  <wsdl:message name="{m}Response">
    <wsdl:part name="parameters" element="tns:{m}Response"/>
  </wsdl:message>"#
        );
    }
    let _ = writeln!(w, r#"  <wsdl:portType name="{base}">"#);
    for m in methods {
        let _ = writeln!(
            w,
            r#"    <wsdl:operation name="{m}">
      <wsdl:input name="{m}Request" message="tns:{m}Request"/>
      <wsdl:output name="{m}Response" message="tns:{m}Response"/>
    </wsdl:operation>"#
        );
    }
    let _ = writeln!(
        w,
        r#"  </wsdl:portType>
  <wsdl:binding name="{base}SoapBinding" type="tns:{base}">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>"#
    );
    for m in methods {
        let _ = writeln!(
            w,
            r#"    <wsdl:operation name="{m}">
      <soap:operation soapAction="{action}" style="document"/>
      <wsdl:input name="{m}Request">
        <soap:body use="literal"/>
      </wsdl:input>
      <wsdl:output name="{m}Response">
        <soap:body use="literal"/>
      </wsdl:output>
    </wsdl:operation>"#,
            action = escape_attr(&soap_action_uri(m))
        );
    }
    let _ = write!(
        w,
        r#"  </wsdl:binding>
  <wsdl:service name="{base}Service">
    <wsdl:port name="{base}Port" binding="tns:{base}SoapBinding">
      <soap:address location="{location}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#,
        location = escape_attr(endpoint)
    );
    w
}
