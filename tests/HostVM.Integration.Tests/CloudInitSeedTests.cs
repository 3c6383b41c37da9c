using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>
/// A VM created with cloud-init inputs gets a NoCloud seed (an ISO 9660 disk labelled CIDATA) that HostVM writes itself:
/// read back here with bsdtar (libarchive), and from inside a booted guest off its block device (the test kernel has no
/// iso9660; a real mount is the Debian image's test).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class CloudInitSeedTests
{
    private static readonly string Key = PublicKey("ssh-ed25519", 32, 7) + " alice@laptop";

    [Fact]
    public async Task ASeedCarriesTheKeyTheHostnameAndTheVmsOwnInstanceIdAndBadInputsAreRefused()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();

        var vm = await daemon.CreateVmAsync(new { name = "web", image = "guest", ssh_keys = new[] { Key }, hostname = "www" });
        string id = vm.GetProperty("id").GetString()!;
        Assert.Equal("www", vm.GetProperty("cloud_init").GetProperty("hostname").GetString());
        string seed = Path.Combine(daemon.DataDir, "vms", id, "seed.iso");
        Assert.Equal($"instance-id: {id}\nlocal-hostname: www\n", Bsdtar(seed, "meta-data"));
        string userData = Bsdtar(seed, "user-data");
        Assert.StartsWith("#cloud-config\n", userData, StringComparison.Ordinal);
        Assert.Contains($"  - name: debian\n", userData, StringComparison.Ordinal);
        Assert.Contains($"      - \"{Key}\"\n", userData, StringComparison.Ordinal);

        // A clone is a new instance: its own instance id and host name, the same user-data.
        var clone = await daemon.CreateVmAsync(new { name = "web2", clone_of = "web" });
        string cloneId = clone.GetProperty("id").GetString()!;
        string cloneSeed = Path.Combine(daemon.DataDir, "vms", cloneId, "seed.iso");
        Assert.Equal($"instance-id: {cloneId}\nlocal-hostname: web2\n", Bsdtar(cloneSeed, "meta-data"));
        Assert.Equal(userData, Bsdtar(cloneSeed, "user-data"));

        // User-data given is used as it is.
        var own = await daemon.CreateVmAsync(new { name = "own", image = "guest", user_data = "#cloud-config\nruncmd: [[touch, /x]]\n" });
        Assert.Equal("#cloud-config\nruncmd: [[touch, /x]]\n", Bsdtar(Path.Combine(daemon.DataDir, "vms", own.GetProperty("id").GetString()!, "seed.iso"), "user-data"));

        // No cloud-init inputs, no seed.
        var plain = await daemon.CreateVmAsync(new { name = "plain", image = "guest" });
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("cloud_init").ValueKind);
        Assert.False(File.Exists(Path.Combine(daemon.DataDir, "vms", plain.GetProperty("id").GetString()!, "seed.iso")));

        async Task RefusedAsync(object request, string field, string words)
        {
            var (status, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", request);
            Assert.True(status == 400, problem.ToString());
            Assert.Equal(field, problem.GetProperty("errors").EnumerateObject().Single().Name);
            Assert.Contains(words, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        await RefusedAsync(new { name = "bad1", image = "guest", ssh_keys = new[] { "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----" } }, "ssh_keys", "private key");
        await RefusedAsync(new { name = "bad2", image = "guest", ssh_keys = new[] { "ssh-ed25519 not-base64!" } }, "ssh_keys", "not an OpenSSH public key");
        await RefusedAsync(new { name = "bad3", image = "guest", ssh_keys = new[] { PublicKey("ssh-rsa", 32, 1).Replace("ssh-rsa ", "ssh-ed25519 ", StringComparison.Ordinal) } }, "ssh_keys", "not an OpenSSH public key");
        await RefusedAsync(new { name = "bad4", image = "guest", ssh_keys = new[] { Key + "\nruncmd: [[reboot]]" } }, "ssh_keys", "not an OpenSSH public key");
        await RefusedAsync(new { name = "bad5", image = "guest", user_data = new string('x', 33 * 1024) }, "user_data", "1 to 32768");
        await RefusedAsync(new { name = "bad6", image = "guest", ssh_keys = new[] { Key }, hostname = "Not_A_Label" }, "hostname", "DNS label");
        await RefusedAsync(new { name = "bad7", image = "guest", ssh_keys = new[] { Key }, user = "root" }, "user", "not root");
        await RefusedAsync(new { name = "bad8", image = "guest", ssh_keys = new[] { Key }, user_data = "#cloud-config\n" }, "user_data", "as it is");
        foreach (string name in new[] { "bad1", "bad2", "bad3", "bad4", "bad5", "bad6", "bad7", "bad8" })
        {
            Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, $"/v1/vms/{name}")).Status);
        }
    }

    [Fact]
    public async Task ABootedGuestHasTheSeedAsAReadOnlyDiskWithTheFilesBytes()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "seeded", image = "guest", memory_mib = 128, ssh_keys = new[] { Key }, start = true });
        string id = vm.GetProperty("id").GetString()!;
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));

        // The seed is a disk besides the VM's own (which letter depends on the kernel's probe order): the one whose sector 16
        // is a volume descriptor labelled CIDATA (the label at byte 40; busybox grep stops a line at a NUL, so the bytes are cut out).
        var (_, device) = await console.RunAsync(
            "for d in /dev/vd?; do [ \"$(dd if=$d bs=1 skip=$((16 * 2048 + 40)) count=6 2>/dev/null)\" = CIDATA ] && echo $d; done", 30);
        // The output may begin with the shell's first prompt ("# "): the device is the one name in it.
        string seed = System.Text.RegularExpressions.Regex.Match(device, "/dev/vd[a-z]\\b").Value;
        Assert.True(System.Text.RegularExpressions.Regex.Matches(device, "/dev/vd[a-z]\\b").Count == 1, device);
        Assert.Equal("1", (await console.RunAsync($"cat /sys/block/{seed[5..]}/ro", 30)).Output.Trim());
        string Find(string pattern) => $"tr -d '\\000' < {seed} | grep -a -o '{pattern}'";
        Assert.Contains(Key.Split(' ')[1], (await console.RunAsync(Find("ssh-ed25519 [A-Za-z0-9+/=]*"), 30)).Output, StringComparison.Ordinal);
        Assert.Contains($"instance-id: {id}", (await console.RunAsync(Find("instance-id: [0-9a-f]*"), 30)).Output, StringComparison.Ordinal);
        Assert.Contains("local-hostname: seeded", (await console.RunAsync(Find("local-hostname: [a-z0-9-]*"), 30)).Output, StringComparison.Ordinal);
        var (written, _) = await console.RunAsync($"echo x | dd of={seed} bs=1 seek=40000 conv=notrunc 2>/dev/null", 30);
        Assert.NotEqual(0, written);
    }

    /// <summary>A well-formed OpenSSH public key line of <paramref name="type"/> (random key bytes: only its form is checked).</summary>
    private static string PublicKey(string type, int keyBytes, int seed)
    {
        byte[] blob = new byte[4 + type.Length + 4 + keyBytes];
        BinaryPrimitives.WriteInt32BigEndian(blob, type.Length);
        Encoding.ASCII.GetBytes(type, blob.AsSpan(4));
        BinaryPrimitives.WriteInt32BigEndian(blob.AsSpan(4 + type.Length), keyBytes);
        new Random(seed).NextBytes(blob.AsSpan(8 + type.Length));
        return $"{type} {Convert.ToBase64String(blob)}";
    }

    /// <summary>One file of an ISO image as libarchive reads it (an independent reader of what HostVM wrote).</summary>
    private static string Bsdtar(string iso, string file)
    {
        using var p = Process.Start(new ProcessStartInfo("bsdtar", ["-xOf", iso, file]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"bsdtar -xOf {iso} {file}: {error.Result}");
        return output;
    }
}
