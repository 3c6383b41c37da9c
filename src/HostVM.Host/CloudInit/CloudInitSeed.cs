using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using HostVM.Host.Api;
using HostVM.Storage.Iso;

namespace HostVM.Host.CloudInit;

/// <summary>
/// The cloud-init NoCloud seed a VM is created with: <c>meta-data</c> (instance-id, local-hostname) and <c>user-data</c>
/// (the caller's verbatim, or a #cloud-config made here with a sudo user and its SSH keys) on an ISO 9660 volume labelled
/// CIDATA, which cloud-init finds by that label (docs: "cidata or CIDATA"). No network-config: cloud-init's fallback is
/// DHCP on the first NIC, which is what a HostVM network offers.
/// </summary>
public static partial class CloudInitSeed
{
    /// <summary>User data at most: cloud-init takes more, but it comes in the create request, whose JSON is at most 64 KiB.</summary>
    public const int MaxUserDataBytes = 32 * 1024;

    public const int MaxSshKeys = 16;

    /// <summary>The user made when the request names none: Debian's cloud images' default user.</summary>
    public const string DefaultUser = "debian";

    private static readonly string[] KeyTypes =
    [
        "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    ];

    /// <summary>Whether the request asks for a seed: any of user_data, ssh_keys, hostname, user.</summary>
    public static bool IsRequested(CreateVmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.UserData is not null || request.SshKeys is { Count: > 0 } || request.Hostname is not null || request.User is not null;
    }

    /// <summary>The user-data the request asks for, checked (400 naming the field for anything wrong).</summary>
    public static byte[] UserData(CreateVmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.UserData is { } given)
        {
            if (request.SshKeys is { Count: > 0 } || request.User is not null)
            {
                throw ApiProblem.BadRequest("user_data is used as it is: put the users and keys in it, or give ssh_keys (and user) instead of user_data.", "user_data");
            }

            byte[] bytes = Encoding.UTF8.GetBytes(given);
            if (bytes.Length is 0 or > MaxUserDataBytes)
            {
                throw ApiProblem.BadRequest($"user_data: {bytes.Length} bytes; it must have 1 to {MaxUserDataBytes}.", "user_data");
            }

            return bytes;
        }

        string user = request.User ?? DefaultUser;
        if (!UserName().IsMatch(user) || user == "root")
        {
            throw ApiProblem.BadRequest($"user '{user}': 1-32 of a-z, 0-9, '_' and '-', starting with a letter or '_', and not root.", "user");
        }

        var keys = request.SshKeys ?? [];
        if (keys.Count > MaxSshKeys)
        {
            throw ApiProblem.BadRequest($"ssh_keys: {keys.Count} keys; at most {MaxSshKeys}.", "ssh_keys");
        }

        var config = new StringBuilder("#cloud-config\n");
        if (keys.Count > 0)
        {
            // The key goes in as one JSON string (valid YAML): nothing in it can start a new YAML key.
            config.Append("users:\n  - name: ").Append(user).Append('\n')
                .Append("    groups: [sudo]\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    shell: /bin/bash\n    lock_passwd: true\n    ssh_authorized_keys:\n");
            foreach (string key in keys)
            {
                config.Append("      - \"").Append(JsonEncodedText.Encode(CheckKey(key), JavaScriptEncoder.UnsafeRelaxedJsonEscaping)).Append("\"\n");
            }

            config.Append("ssh_pwauth: false\n");
        }

        return Encoding.UTF8.GetBytes(config.ToString());
    }

    /// <summary>The host name: the one asked for (a DNS label), else the VM's name.</summary>
    public static string Hostname(string? requested, string vmName)
    {
        if (requested is null)
        {
            return vmName;
        }

        return HostLabel().IsMatch(requested)
            ? requested
            : throw ApiProblem.BadRequest($"hostname '{requested}': a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.", "hostname");
    }

    /// <summary>Writes a VM's seed image and the user-data it holds (for its clones) into its directory, synced: its inventory row follows.</summary>
    public static void Write(Supervision.VmPaths paths, Inventory.CloudInitRecord seed, byte[] userData, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(seed);
        byte[] metaData = Encoding.UTF8.GetBytes($"instance-id: {seed.InstanceId}\nlocal-hostname: {seed.Hostname}\n");
        WriteSynced(paths.SeedUserData, userData);
        WriteSynced(paths.Seed, IsoImageWriter.Write("CIDATA", [new IsoFile("meta-data", metaData), new IsoFile("user-data", userData)], time));
    }

    private static void WriteSynced(string path, byte[] content)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        file.Write(content);
        file.Flush(flushToDisk: true);
    }

    /// <summary>An OpenSSH public key line (TYPE BASE64 [COMMENT]) whose blob names the same type; a private key is refused saying so.</summary>
    private static string CheckKey(string key)
    {
        string line = (key ?? string.Empty).Trim();
        if (line.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            throw ApiProblem.BadRequest("ssh_keys: that is a private key. Give the public key (the .pub file, e.g. ~/.ssh/id_ed25519.pub); the private key never leaves your machine.", "ssh_keys");
        }

        string[] parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        if (line.Length > 8192 || line.Contains('\n', StringComparison.Ordinal) || parts.Length < 2 || !KeyTypes.Contains(parts[0]) || !BlobNames(parts[1], parts[0]))
        {
            string shown = line.Length > 40 ? line[..40] + "…" : line;
            throw ApiProblem.BadRequest($"ssh_keys: '{shown}' is not an OpenSSH public key (one line: TYPE BASE64 [COMMENT], TYPE one of {string.Join(", ", KeyTypes)}).", "ssh_keys");
        }

        return line;
    }

    /// <summary>The key blob is base64 whose first field (a length-prefixed string) is the key's type, as ssh-keygen writes it.</summary>
    private static bool BlobNames(string base64, string type)
    {
        byte[] blob = new byte[base64.Length];
        if (!Convert.TryFromBase64String(base64, blob, out int length) || length < 4)
        {
            return false;
        }

        int nameLength = BinaryPrimitives.ReadInt32BigEndian(blob);
        return nameLength == type.Length && length >= 4 + nameLength && Encoding.ASCII.GetString(blob, 4, nameLength) == type;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_-]{0,31}$")]
    private static partial Regex UserName();

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex HostLabel();
}
