using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace HostVM.Host.Security;

/// <summary>
/// The certificate the daemon serves HTTPS with: the one the settings name (<c>tls_cert</c> + <c>tls_key</c>, PEM),
/// else a self-signed one made on the first start and kept in DATA_DIR/tls/ so its fingerprint, which clients
/// pin, stays the same across restarts.
/// </summary>
public sealed class TlsIdentity : IDisposable
{
    public const string CertificateFile = "server.crt";
    public const string KeyFile = "server.key";

    /// <summary>Long enough that nobody has to rotate a pinned certificate by surprise; replace it by deleting DATA_DIR/tls.</summary>
    public static readonly TimeSpan GeneratedValidity = TimeSpan.FromDays(3650);

    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1", "Server Authentication");

    private TlsIdentity(X509Certificate2 certificate, string certificatePath, bool generated)
    {
        Certificate = certificate;
        CertificatePath = certificatePath;
        Generated = generated;
        Fingerprint = CertificateFingerprint.Of(certificate);
    }

    /// <summary>The certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>SHA-256 of the certificate, AB:CD:… (what clients pin).</summary>
    public string Fingerprint { get; }

    /// <summary>The PEM file the certificate came from (clients may trust it as a CA file).</summary>
    public string CertificatePath { get; }

    /// <summary>True when this start made the certificate (the first start with this data directory).</summary>
    public bool Generated { get; }

    public static string DirectoryOf(HostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return Path.Combine(settings.DataDir, "tls");
    }

    /// <summary>The given certificate, else the generated one (made now if there is none yet).</summary>
    /// <exception cref="HostSettingsException">A file is missing, unreadable, not PEM, or the key is not the certificate's.</exception>
    public static TlsIdentity Load(HostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.TlsCert is { } certPath && settings.TlsKey is { } keyPath)
        {
            return new TlsIdentity(ReadPem(certPath, keyPath, "tls_cert/tls_key", "give a PEM certificate and its PEM private key"), certPath, generated: false);
        }

        string dir = DirectoryOf(settings);
        string cert = Path.Combine(dir, CertificateFile);
        string key = Path.Combine(dir, KeyFile);
        if (File.Exists(cert))
        {
            if (!File.Exists(key))
            {
                throw new HostSettingsException($"{cert} has no private key beside it ({key}); restore the key, or delete {dir} to make a new certificate (clients will have to pin its new fingerprint).");
            }

            return new TlsIdentity(ReadPem(cert, key, dir, $"delete {dir} to make a new certificate (clients will have to pin its new fingerprint)"), cert, generated: false);
        }

        // No certificate yet (a key alone is what an interrupted first start leaves: the key is written
        // first, and nobody can have pinned a certificate that was never written).
        CreateDirectory(dir);
        using (var generated = Generate(settings))
        {
            AtomicFile.Write(key, generated.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem(), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            AtomicFile.Write(cert, generated.ExportCertificatePem(), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        return new TlsIdentity(ReadPem(cert, key, dir, $"delete {dir} and start again"), cert, generated: true);
    }

    /// <summary>A self-signed ECDSA P-256 server certificate for this host's names and the addresses it listens on.</summary>
    public static X509Certificate2 Generate(HostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string host = Dns.GetHostName();
        var request = new CertificateRequest(new X500DistinguishedName($"CN=hostvm {EscapeName(host)}"), key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        foreach (string dns in new[] { "localhost", host }.Where(n => n.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            names.AddDnsName(dns);
        }

        foreach (var address in Addresses(settings))
        {
            names.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuthentication], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        // A day of slack before now: a client whose clock is a little behind still accepts it.
        return request.CreateSelfSigned(now.AddDays(-1), now + GeneratedValidity);
    }

    /// <summary>Loopback, and the IPs of the listen addresses (every interface's for 0.0.0.0 and ::).</summary>
    private static IEnumerable<IPAddress> Addresses(HostSettings settings)
    {
        var addresses = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
        foreach (string listen in settings.Listen)
        {
            if (!IPEndPoint.TryParse(listen, out var endpoint))
            {
                continue; // HostDaemon refuses it with a clear message
            }

            if (endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                addresses.AddRange(NetworkInterface.GetAllNetworkInterfaces()
                    .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                    .Select(u => u.Address)
                    .Where(a => !a.IsIPv6LinkLocal));
            }
            else
            {
                addresses.Add(endpoint.Address);
            }
        }

        return addresses.Distinct();
    }

    private static string EscapeName(string host) => host.Replace(",", string.Empty, StringComparison.Ordinal).Replace("=", string.Empty, StringComparison.Ordinal);

    private static X509Certificate2 ReadPem(string certPath, string keyPath, string setting, string fix)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw new HostSettingsException($"{setting}: cannot use certificate {certPath} with key {keyPath} ({e.Message}); {fix}.");
        }
    }

    private static void CreateDirectory(string dir)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dir);
        }
        else
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public void Dispose() => Certificate.Dispose();
}
