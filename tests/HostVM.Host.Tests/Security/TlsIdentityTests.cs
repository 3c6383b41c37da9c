using System.Diagnostics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using HostVM.Host.Security;

namespace HostVM.Host.Tests.Security;

/// <summary>The daemon's certificate: made once and kept, the key private, a given one loaded, bad files one clear error.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TlsIdentityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private HostSettings Settings(string? cert = null, string? key = null) => new()
    {
        DataDir = Path.Combine(_dir, "data"),
        RuntimeDir = Path.Combine(_dir, "run"),
        Listen = ["127.0.0.1:0", "192.0.2.7:8006"],
        TlsCert = cert,
        TlsKey = key,
    };

    private string CertFile => Path.Combine(_dir, "data", "tls", TlsIdentity.CertificateFile);

    private string KeyFile => Path.Combine(_dir, "data", "tls", TlsIdentity.KeyFile);

    [Fact]
    public void TheFirstStartMakesACertificateAndLaterStartsKeepIt()
    {
        string fingerprint;
        using (var first = TlsIdentity.Load(Settings()))
        {
            Assert.True(first.Generated);
            Assert.Equal(CertFile, first.CertificatePath);
            Assert.True(first.Certificate.HasPrivateKey);
            fingerprint = first.Fingerprint;
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyFile));
        Assert.True(File.GetUnixFileMode(CertFile).HasFlag(UnixFileMode.OtherRead));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(CertFile)!, "*.tmp"));

        using var second = TlsIdentity.Load(Settings());
        Assert.False(second.Generated);
        Assert.Equal(fingerprint, second.Fingerprint);
    }

    [Fact]
    public void TheGeneratedCertificateIsAServerCertificateForLoopbackThisHostAndTheListenAddresses()
    {
        using var identity = TlsIdentity.Load(Settings());
        var certificate = identity.Certificate;
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Contains("localhost", names.EnumerateDnsNames());
        Assert.Contains(Dns.GetHostName(), names.EnumerateDnsNames());
        var ips = names.EnumerateIPAddresses().ToList();
        Assert.Contains(IPAddress.Loopback, ips);
        Assert.Contains(IPAddress.IPv6Loopback, ips);
        Assert.Contains(IPAddress.Parse("192.0.2.7"), ips);
        var usage = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Contains(usage.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.1");
        Assert.True(certificate.NotAfter > DateTime.Now.AddYears(9));
        using var key = certificate.GetECDsaPublicKey();
        Assert.Equal(256, key?.KeySize);
    }

    [Fact]
    public void TheFingerprintIsWhatOpensslPrints()
    {
        using var identity = TlsIdentity.Load(Settings());
        var openssl = Process.Start(new ProcessStartInfo("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", CertFile]) { RedirectStandardOutput = true })!;
        string printed = openssl.StandardOutput.ReadToEnd().Trim();
        openssl.WaitForExit();
        Assert.Equal($"sha256 Fingerprint={identity.Fingerprint}", printed, ignoreCase: true);
        Assert.Matches("^([0-9A-F]{2}:){31}[0-9A-F]{2}$", identity.Fingerprint);
    }

    [Fact]
    public void AGivenCertificateAndKeyAreUsedAndNothingIsGenerated()
    {
        using var made = TlsIdentity.Generate(Settings());
        string cert = Path.Combine(_dir, "given.crt");
        string key = Path.Combine(_dir, "given.key");
        File.WriteAllText(cert, made.ExportCertificatePem());
        File.WriteAllText(key, made.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

        var settings = HostSettings.Load(null, new Dictionary<string, string?> { ["data_dir"] = Path.Combine(_dir, "data"), ["tls_cert"] = cert, ["tls_key"] = key });
        using var identity = TlsIdentity.Load(settings);
        Assert.False(identity.Generated);
        Assert.Equal(cert, identity.CertificatePath);
        Assert.Equal(CertificateFingerprint.Of(made), identity.Fingerprint);
        Assert.False(Directory.Exists(Path.Combine(_dir, "data", "tls")));
    }

    [Fact]
    public void MissingCorruptOrMismatchedFilesAreOneClearError()
    {
        using var one = TlsIdentity.Generate(Settings());
        using var another = TlsIdentity.Generate(Settings());
        string cert = Path.Combine(_dir, "given.crt");
        string key = Path.Combine(_dir, "given.key");
        string otherKey = Path.Combine(_dir, "other.key");
        string garbage = Path.Combine(_dir, "garbage.pem");
        File.WriteAllText(cert, one.ExportCertificatePem());
        File.WriteAllText(key, one.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(otherKey, another.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");

        foreach (var (c, k) in new[] { (Path.Combine(_dir, "none.crt"), key), (garbage, key), (cert, garbage), (cert, otherKey) })
        {
            var e = Assert.Throws<HostSettingsException>(() => TlsIdentity.Load(Settings(c, k)));
            Assert.StartsWith($"tls_cert/tls_key: cannot use certificate {c} with key {k}", e.Message);
        }

        Assert.Contains("give both", Assert.Throws<HostSettingsException>(() => HostSettings.Load(null, new Dictionary<string, string?> { ["tls_cert"] = cert })).Message);
    }

    [Fact]
    public void AGeneratedCertificateWithoutItsKeyIsNotSilentlyReplaced()
    {
        TlsIdentity.Load(Settings()).Dispose();
        File.Delete(KeyFile);
        var e = Assert.Throws<HostSettingsException>(() => TlsIdentity.Load(Settings()));
        Assert.Contains("has no private key", e.Message);

        // A key alone is an interrupted first start: a certificate is made again.
        File.Delete(CertFile);
        File.WriteAllText(KeyFile, "half");
        using var again = TlsIdentity.Load(Settings());
        Assert.True(again.Generated);
    }

    [Theory]
    [InlineData("ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89", true)]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", true)]
    [InlineData("sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", true)]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF012345678", false)]
    [InlineData("XBCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", false)]
    [InlineData("", false)]
    public void FingerprintsAreReadInAnyCaseWithOrWithoutColons(string text, bool valid)
    {
        string? normalized = CertificateFingerprint.Normalize(text);
        Assert.Equal(valid ? "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89" : null, normalized);
    }
}
