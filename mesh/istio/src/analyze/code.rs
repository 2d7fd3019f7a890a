//! The analyzer's finding codes: `MSH01xx` routing, `MSH02xx` Services, `MSH03xx` mesh
//! security, `MSH04xx` probes.
//!
//! Only what Istio's own analyzers do not judge offline has a code here. Retired because istioctl
//! covers them (tests/upstream/check.sh runs it on every render): MSH0103 dangling subset and
//! MSH0107 missing gateway (`istioctl analyze`: IST0101), MSH0106 route behind a catch-all
//! (IST0130), MSH0109 two VirtualServices for one mesh host (IST0109), MSH0108 invalid regex,
//! duration, weight or StringMatch (`istioctl validate`). Their ids are not reused.

use std::fmt;

/// What a finding is about. Printed as its stable id (`MSH0105`), which the README's table lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// `MSH0101`: VirtualService destination host is not a Service.
    DanglingHost,
    /// `MSH0102`: VirtualService destination port is not a port of the Service.
    UnknownDestinationPort,
    /// `MSH0104`: DestinationRule subset selects no pods behind the Service.
    SubsetSelectsNothing,
    /// `MSH0105`: route weights do not add up to 100.
    WeightsNot100,
    /// `MSH0110`: match condition the local router cannot evaluate.
    UnevaluableMatch,
    /// `MSH0111`: field the local lab does not execute (mirror, rewrite, headers, traffic policy, …).
    Unexecuted,
    /// `MSH0201`: Service port name does not declare an Istio protocol.
    PortNameWithoutProtocol,
    /// `MSH0202`: Service targetPort is not a containerPort of a selected Deployment.
    TargetPortNotInContainer,
    /// `MSH0203`: Service selects no Deployment.
    ServiceSelectsNothing,
    /// `MSH0301`: workload namespace is not enabled for sidecar injection.
    InjectionDisabled,
    /// `MSH0302`: workload namespace is not covered by STRICT mTLS.
    MtlsNotStrict,
    /// `MSH0303`: PeerAuthentication relaxes mTLS on a port without a documented exception.
    UndocumentedPortMtlsException,
    /// `MSH0304`: AuthorizationPolicy principal names an unknown ServiceAccount.
    UnknownPrincipal,
    /// `MSH0305`: Deployment's ServiceAccount does not exist.
    MissingServiceAccount,
    /// `MSH0306`: Deployment runs as the namespace's default ServiceAccount.
    DefaultServiceAccount,
    /// `MSH0307`: DestinationRule TLS mode is not ISTIO_MUTUAL.
    TlsNotIstioMutual,
    /// `MSH0401`: probe port is not a port of the container.
    ProbePortNotInContainer,
    /// `MSH0402`: probe path is not the conventional /healthz or /readyz.
    UnconventionalProbePath,
    /// `MSH0403`: container has no liveness or readiness probe.
    MissingProbe,
}

impl Code {
    /// Every code, in id order.
    pub const ALL: [Code; 19] = [
        Code::DanglingHost,
        Code::UnknownDestinationPort,
        Code::SubsetSelectsNothing,
        Code::WeightsNot100,
        Code::UnevaluableMatch,
        Code::Unexecuted,
        Code::PortNameWithoutProtocol,
        Code::TargetPortNotInContainer,
        Code::ServiceSelectsNothing,
        Code::InjectionDisabled,
        Code::MtlsNotStrict,
        Code::UndocumentedPortMtlsException,
        Code::UnknownPrincipal,
        Code::MissingServiceAccount,
        Code::DefaultServiceAccount,
        Code::TlsNotIstioMutual,
        Code::ProbePortNotInContainer,
        Code::UnconventionalProbePath,
        Code::MissingProbe,
    ];

    /// The stable id, e.g. `MSH0105`.
    pub fn id(self) -> &'static str {
        match self {
            Code::DanglingHost => "MSH0101",
            Code::UnknownDestinationPort => "MSH0102",
            Code::SubsetSelectsNothing => "MSH0104",
            Code::WeightsNot100 => "MSH0105",
            Code::UnevaluableMatch => "MSH0110",
            Code::Unexecuted => "MSH0111",
            Code::PortNameWithoutProtocol => "MSH0201",
            Code::TargetPortNotInContainer => "MSH0202",
            Code::ServiceSelectsNothing => "MSH0203",
            Code::InjectionDisabled => "MSH0301",
            Code::MtlsNotStrict => "MSH0302",
            Code::UndocumentedPortMtlsException => "MSH0303",
            Code::UnknownPrincipal => "MSH0304",
            Code::MissingServiceAccount => "MSH0305",
            Code::DefaultServiceAccount => "MSH0306",
            Code::TlsNotIstioMutual => "MSH0307",
            Code::ProbePortNotInContainer => "MSH0401",
            Code::UnconventionalProbePath => "MSH0402",
            Code::MissingProbe => "MSH0403",
        }
    }

    /// What the code means, in a line.
    pub fn summary(self) -> &'static str {
        match self {
            Code::DanglingHost => "VirtualService destination host is not a Service",
            Code::UnknownDestinationPort => {
                "VirtualService destination port is not a port of the Service"
            }
            Code::SubsetSelectsNothing => {
                "DestinationRule subset selects no pods behind the Service"
            }
            Code::WeightsNot100 => "route weights do not add up to 100",
            Code::UnevaluableMatch => "match condition the local router cannot evaluate",
            Code::Unexecuted => {
                "field the local lab does not execute (mirror, rewrite, headers, traffic policy, …)"
            }
            Code::PortNameWithoutProtocol => "Service port name does not declare an Istio protocol",
            Code::TargetPortNotInContainer => {
                "Service targetPort is not a containerPort of a selected Deployment"
            }
            Code::ServiceSelectsNothing => "Service selects no Deployment",
            Code::InjectionDisabled => "workload namespace is not enabled for sidecar injection",
            Code::MtlsNotStrict => "workload namespace is not covered by STRICT mTLS",
            Code::UndocumentedPortMtlsException => {
                "PeerAuthentication relaxes mTLS on a port without a documented exception"
            }
            Code::UnknownPrincipal => {
                "AuthorizationPolicy principal names an unknown ServiceAccount"
            }
            Code::MissingServiceAccount => "Deployment's ServiceAccount does not exist",
            Code::DefaultServiceAccount => {
                "Deployment runs as the namespace's default ServiceAccount"
            }
            Code::TlsNotIstioMutual => "DestinationRule TLS mode is not ISTIO_MUTUAL",
            Code::ProbePortNotInContainer => "probe port is not a port of the container",
            Code::UnconventionalProbePath => {
                "probe path is not the conventional /healthz or /readyz"
            }
            Code::MissingProbe => "container has no liveness or readiness probe",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered() {
        let ids: Vec<&str> = Code::ALL.iter().map(|c| c.id()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
    }
}
