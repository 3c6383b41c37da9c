using System.Diagnostics;
using System.Text.Json;
using HostVM.Storage.Tests;

namespace HostVM.Integration.Tests;

/// <summary>
/// A real distribution deployed the way a user would: the Debian 13 template (guest/debian/build.sh) imported as an image
/// that boots through OpenSBI and U-Boot from its own disk, a VM made from it with an SSH key and a hostname (HostVM's
/// cloud-init NoCloud seed) on a NAT network, a forwarded port to its port 22, and a login over SSH that runs a command.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class DebianTests
{
    /// <summary>Under emulation on a busy 2-core machine a first boot (cloud-init's Python above all) takes minutes.</summary>
    private const double BootSeconds = 1200;

    private static (int Code, string Output) Run(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
        }

        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public async Task AVmFromTheDebianTemplateTakesItsHostnameAndKeyAndAnswersOverSshThroughAForwardedPort()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string import = Path.Combine(daemon.DataDir, "import");

        // The template as the image's disk (raw, sparse: the base VMs' overlays name), U-Boot as its kernel, OpenSBI before it.
        QemuTools.Check("qemu-img", import, "convert", "-O", "raw", GuestArtifacts.Debian("debian-13.qcow2"), "debian.raw");
        File.Copy(GuestArtifacts.Debian("u-boot.elf"), Path.Combine(import, "u-boot.elf"));
        File.Copy(GuestArtifacts.Debian("fw_jump.bin"), Path.Combine(import, "fw_jump.bin"));
        var imported = await daemon.PostAsync("/v1/images", new { name = "debian-13", kernel = "u-boot.elf", firmware = "fw_jump.bin", disk = "debian.raw", boot_args = "" });
        Assert.True(imported.IsSuccessStatusCode, await imported.Content.ReadAsStringAsync());
        File.Delete(Path.Combine(import, "debian.raw"));

        string key = Path.Combine(daemon.Root, "id_ed25519");
        var (code, output) = Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "debian-test", "-f", key);
        Assert.True(code == 0, output);

        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan", nat = true })).Status);
        DaemonCli.Ok(daemon, "vm", "create", "web", "--image", "debian-13", "--memory", "1G", "--network", "lan", "--ssh-key", key + ".pub", "--hostname", "deb-web", "--restart", "never");
        using var forward = JsonDocument.Parse(DaemonCli.Ok(daemon, "network", "forward", "add", "lan", "0", "web:22", "-o", "json"));
        int port = forward.RootElement.GetProperty("host_port").GetInt32();
        Assert.InRange(port, 1024, 65535);

        var vm = await daemon.GetAsync("/v1/vms/web");
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/web/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-DEBIAN-READY", BootSeconds);

        // multi-user.target was reached; sshd has the key cloud-init wrote (it may still be starting: a few tries).
        string[] ssh = ["-i", key, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30", "debian@127.0.0.1", "uname -a; hostname; systemctl is-active multi-user.target"];
        for (int attempt = 0; attempt < 20; attempt++)
        {
            (code, output) = Run("ssh", ssh);
            if (code == 0)
            {
                break;
            }

            await Task.Delay(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        }

        Assert.True(code == 0, $"ssh exited {code}: {output}\n{daemon.SerialText(vm)}");
        Assert.Contains("Linux deb-web", output, StringComparison.Ordinal);
        Assert.Contains("riscv64 GNU/Linux", output, StringComparison.Ordinal);
        Assert.Contains("\ndeb-web\n", output.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("\nactive", output.ReplaceLineEndings("\n"), StringComparison.Ordinal);

        // A key the seed did not carry is refused.
        string other = Path.Combine(daemon.Root, "other");
        Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other);
        ssh[1] = other;
        Assert.NotEqual(0, Run("ssh", ssh).Code);
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/web/stop", new { timeout_s = 60 })).Status);
    }
}
