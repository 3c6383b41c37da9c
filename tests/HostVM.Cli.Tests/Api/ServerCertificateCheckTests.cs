using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using HostVM.Cli.Api;
using HostVM.Host;
using HostVM.Host.Security;

namespace HostVM.Cli.Tests.Api;

/// <summary>Pinning: the pinned certificate is trusted whatever the chain says; any other is not; without a pin the system decides.</summary>
public sealed class ServerCertificateCheckTests : IDisposable
{
    private readonly X509Certificate2 _certificate = TlsIdentity.Generate(new HostSettings { DataDir = "/nonexistent", RuntimeDir = "/nonexistent" });
    private readonly X509Certificate2 _other = TlsIdentity.Generate(new HostSettings { DataDir = "/nonexistent", RuntimeDir = "/nonexistent" });

    public void Dispose()
    {
        _certificate.Dispose();
        _other.Dispose();
    }

    private string Fingerprint => CertificateFingerprint.Of(_certificate);

    public static TheoryData<Func<string, string>> Spellings => new()
    {
        f => f,
        f => f.ToLowerInvariant(),
        f => f.Replace(":", string.Empty, StringComparison.Ordinal),
        f => "sha256:" + f.Replace(":", string.Empty, StringComparison.Ordinal).ToLowerInvariant(),
    };

    [Theory]
    [MemberData(nameof(Spellings))]
    public void ThePinnedCertificateIsTrustedDespiteChainAndNameErrors(Func<string, string> spell)
    {
        var check = new ServerCertificateCheck(spell(Fingerprint));
        Assert.True(check.Validate(this, _certificate, null, SslPolicyErrors.RemoteCertificateChainErrors | SslPolicyErrors.RemoteCertificateNameMismatch));
        Assert.Equal(Fingerprint, check.Seen);
        Assert.False(check.Refused);
    }

    [Fact]
    public void AnotherCertificateIsRefusedEvenIfTheSystemTrustsIt()
    {
        var check = new ServerCertificateCheck(Fingerprint);
        Assert.False(check.Validate(this, _other, null, SslPolicyErrors.None));
        Assert.True(check.Refused);
        Assert.Equal(CertificateFingerprint.Of(_other), check.Seen);
    }

    [Fact]
    public void WithoutAPinTheSystemDecides()
    {
        var check = new ServerCertificateCheck(null);
        Assert.True(check.Validate(this, _certificate, null, SslPolicyErrors.None));
        Assert.False(check.Validate(this, _certificate, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.True(check.Refused);
        Assert.Equal(SslPolicyErrors.RemoteCertificateChainErrors, check.Errors);
        Assert.False(check.Validate(this, null, null, SslPolicyErrors.RemoteCertificateNotAvailable));
    }

    [Fact]
    public void TheRefusalNamesBothFingerprintsAndSaysWhatToDo()
    {
        var address = DaemonAddress.Parse("https://box:8006", "--host");
        var pinned = new DaemonCertificateException(address, Fingerprint, CertificateFingerprint.Of(_other), SslPolicyErrors.None);
        Assert.StartsWith($"the daemon's certificate fingerprint is {Fingerprint}, not the pinned {CertificateFingerprint.Of(_other)}", pinned.Message);
        var unpinned = new DaemonCertificateException(address, Fingerprint, null, SslPolicyErrors.RemoteCertificateChainErrors);
        Assert.Contains($"its SHA-256 fingerprint is {Fingerprint}", unpinned.Message);
        Assert.Contains($"--fingerprint {Fingerprint}", unpinned.Advice);
        Assert.Equal(ExitCodes.Untrusted, FailureReport.For(unpinned)!.ExitCode);
    }
}
