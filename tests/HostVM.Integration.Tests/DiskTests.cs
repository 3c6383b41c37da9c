using System.Diagnostics;
using System.Security.Cryptography;
using HostVM.Machine;
using HostVM.Machine.Virtio;
using HostVM.Storage;

namespace HostVM.Integration.Tests;

/// <summary>A real Linux guest with a virtio-blk disk: ext4 from /dev/vda, writes the host checks, durability, read-only, limits.</summary>
[Collection(GuestCollection.Name)]
public sealed class DiskTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-disk-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string CopyOfTestDisk()
    {
        string path = Path.Combine(_dir, "disk.ext4");
        File.Copy(GuestArtifacts.Guest("disk.ext4"), path);
        return path;
    }

    private string BlankImage(long size)
    {
        string path = Path.Combine(_dir, "blank.img");
        using (var f = File.Create(path))
        {
            f.SetLength(size);
        }

        return path;
    }

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>The first sha256sum-style hash in the output.</summary>
    private static string HashIn(string output) =>
        System.Text.RegularExpressions.Regex.Match(output, "\\b[0-9a-f]{64}\\b") is { Success: true } m ? m.Value : throw new InvalidOperationException("no sha256 in: " + output);

    /// <summary>Reads a file out of an ext4 image with e2fsprogs' debugfs (no mounting, no root).</summary>
    private static byte[] ReadFromExt4(string image, string pathInImage)
    {
        string outFile = Path.Combine(Path.GetDirectoryName(image)!, "extracted.bin");
        var info = new ProcessStartInfo("debugfs", ["-R", $"dump {pathInImage} {outFile}", image])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(info)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(File.Exists(outFile), $"debugfs could not extract {pathInImage}: {err}");
        return File.ReadAllBytes(outFile);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GuestMountsExt4ReadsKnownFileAndWritesAFileTheHostChecks(bool legacy)
    {
        string image = CopyOfTestDisk();
        var config = GuestSession.Configuration() with
        {
            VirtioDevices = [new VirtioBlock(RawFileBlockDevice.Open(image, readOnly: false, "hostvm-test"))],
            VirtioLegacy = legacy,
        };
        string written;
        using (var guest = GuestSession.Start(config))
        {
            guest.Check("mount -t ext4 /dev/vda /mnt");
            Assert.Contains("HostVM test disk: this file has known content.", guest.Check("cat /mnt/hostvm/known.txt"));
            string sums = guest.Check("cd /mnt/hostvm && sha256sum -c known.sha256 blob.sha256; cd /");
            Assert.Contains("known.txt: OK", sums);
            Assert.Contains("blob.bin: OK", sums);
            Assert.Contains("hostvm-test", guest.Check("cat /sys/block/vda/serial"));
            written = HashIn(guest.Check("dd if=/dev/urandom of=/mnt/hostvm/out.bin bs=4k count=64 2>/dev/null && sha256sum /mnt/hostvm/out.bin"));
            guest.Check("umount /mnt");
            Assert.Equal(MachineExitReason.PowerOff, guest.PowerOff().Reason);
            Assert.True(guest.Machine.Device<VirtioBlock>()!.Statistics.Writes > 0);
        }

        Assert.Equal(written, Sha256(ReadFromExt4(image, "/hostvm/out.bin")));
    }

    [Fact]
    public void ReadOnlyDriveRefusesWrites()
    {
        string image = CopyOfTestDisk();
        string before = Sha256(File.ReadAllBytes(image));
        var config = GuestSession.Configuration() with
        {
            VirtioDevices = [new VirtioBlock(RawFileBlockDevice.Open(image, readOnly: true))],
        };
        using (var guest = GuestSession.Start(config))
        {
            Assert.Equal("1", guest.Check("cat /sys/block/vda/ro").Trim());
            var (status, _) = guest.Run("dd if=/dev/zero of=/dev/vda bs=4k count=1 oflag=direct");
            Assert.NotEqual(0, status);
            guest.Check("mount -t ext4 -o ro /dev/vda /mnt && cat /mnt/hostvm/known.txt && umount /mnt");
            guest.PowerOff();
        }

        Assert.Equal(before, Sha256(File.ReadAllBytes(image)));
    }

    [Fact]
    public void WriteAndSyncSurviveKillOfTheVmProcess()
    {
        string image = BlankImage(16 << 20);
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "hostvm.dll"), "run",
            "--firmware", GuestArtifacts.Guest("fw_jump.bin"), "--kernel", GuestArtifacts.Guest("Image"),
            "--initrd", GuestArtifacts.Guest("initramfs.cpio.gz"), "--append", "console=ttyS0 quiet hostvm.mode=shell",
            "--drive", $"file={image}", "--timeout", "300",
        })
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        var gotLine = new AutoResetEvent(false);
        p.OutputDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.AppendLine(e.Data);
            }

            gotLine.Set();
        };
        var errors = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) =>
        {
            lock (errors)
            {
                errors.AppendLine(e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        string Wait(string marker)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
            while (true)
            {
                lock (output)
                {
                    if (output.ToString().Contains(marker, StringComparison.Ordinal))
                    {
                        return output.ToString();
                    }
                }

                if (DateTime.UtcNow >= deadline || p.HasExited)
                {
                    lock (errors)
                    {
                        Assert.Fail($"no '{marker}' from the guest (hostvm {(p.HasExited ? $"exited with {p.ExitCode}" : "still running")}):\n{output}\n--- stderr ---\n{errors}");
                    }
                }
                gotLine.WaitOne(200);
            }
        }

        try
        {
            Wait("HOSTVM-SHELL-READY");
            p.StandardInput.Write("head -c 1048576 /dev/urandom > /tmp/d; sha256sum /tmp/d; dd if=/tmp/d of=/dev/vda bs=64k 2>/dev/null; sync; echo \"SYNCED-$?\"\n");
            p.StandardInput.Flush();
            string console = Wait("SYNCED-0");
            p.Kill(); // SIGKILL: no chance to flush anything on the way out
            p.WaitForExit();
            string hash = HashIn(console);
            byte[] first = new byte[1 << 20];
            using var f = File.OpenRead(image);
            f.ReadExactly(first);
            Assert.Equal(hash, Sha256(first));
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill();
            }
        }
    }

    [Fact]
    public void BandwidthLimitHoldsAndCanBeChangedWhileRunning()
    {
        string image = BlankImage(32 << 20);
        File.WriteAllBytes(image, RandomNumberGenerator.GetBytes(32 << 20));
        // 256 KiB per 125 ms = 2 MiB/s; then 512 KiB per 125 ms = 4 MiB/s.
        var limits = new RateLimitSettings(new TokenBucketSettings(256 << 10, TimeSpan.FromMilliseconds(125)), null);
        var config = GuestSession.Configuration() with
        {
            VirtioDevices = [new VirtioBlock(RawFileBlockDevice.Open(image, readOnly: false), limits)],
        };
        using var guest = GuestSession.Start(config);
        var block = guest.Machine.Device<VirtioBlock>()!;
        double Measure(int mib, int skipMib)
        {
            long before = block.Statistics.BytesRead;
            var watch = Stopwatch.StartNew();
            guest.Check($"dd if=/dev/vda of=/dev/null bs=64k count={mib * 16} skip={skipMib * 16} iflag=direct 2>/dev/null");
            watch.Stop();
            Assert.Equal((long)mib << 20, block.Statistics.BytesRead - before);
            return mib / watch.Elapsed.TotalSeconds;
        }

        double first = Measure(8, 0);
        Assert.InRange(first, 2 * 0.9, 2 * 1.1);
        block.Limiter.Update(limits with { Bandwidth = new TokenBucketSettings(512 << 10, TimeSpan.FromMilliseconds(125)) });
        double second = Measure(16, 8);
        Assert.InRange(second, 4 * 0.9, 4 * 1.1);
        guest.PowerOff();
    }
}
