using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using HostVM.Host.Security;

namespace HostVM.Cli.Api;

/// <summary>
/// Decides whether to trust the daemon's certificate: with a pinned fingerprint, exactly that certificate
/// (a self-signed one has no chain and may not name the host: the pin is the whole trust); without one, what
/// the system's CAs accept. Remembers the certificate it saw so a refusal can say which it was.
/// </summary>
public sealed class ServerCertificateCheck(string? pin)
{
    /// <summary>The fingerprint the certificate must have, or null.</summary>
    public string? Pin { get; } = pin;

    /// <summary>The fingerprint of the last certificate the daemon presented, or null before any.</summary>
    public string? Seen { get; private set; }

    /// <summary>Whether the last certificate was refused.</summary>
    public bool Refused { get; private set; }

    /// <summary>Why the system refused (or would have refused) the last certificate.</summary>
    public SslPolicyErrors Errors { get; private set; }

    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        Errors = errors;
        Seen = certificate is null ? null : CertificateFingerprint.Of(certificate);
        bool trusted = certificate is not null && (Pin is null ? errors == SslPolicyErrors.None : CertificateFingerprint.Matches(certificate, Pin));
        Refused = !trusted;
        return trusted;
    }
}
