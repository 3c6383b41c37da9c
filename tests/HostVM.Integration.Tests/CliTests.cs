using System.Diagnostics;

namespace HostVM.Integration.Tests;

/// <summary>`hostvm run` as a user runs it: exit codes, one-line errors, timeouts.</summary>
[Collection(GuestCollection.Name)]
public sealed class CliTests
{
    private static (int Code, string Stdout, string Stderr) Hostvm(params string[] args)
    {
        using var p = HostvmProcess.Start(args);
        int code = p.WaitForExitAsync(TimeSpan.FromMinutes(3)).GetAwaiter().GetResult();
        return (code, p.Output, p.Errors);
    }

    private static string TempFile(byte[] content)
    {
        string path = Path.Combine(Path.GetTempPath(), $"hostvm-test-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, content);
        return path;
    }

    private static void AssertOneLineError(int code, string stderr, string mentions)
    {
        Assert.Equal(2, code);
        var lines = stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("hostvm: ", lines[0]);
        Assert.Contains(mentions, lines[0]);
        Assert.DoesNotContain("   at ", stderr); // no stack trace
    }

    [Fact]
    public void MissingKernelIsAOneLineError()
    {
        var (code, _, err) = Hostvm("run", "--kernel", "/nonexistent/Image");
        AssertOneLineError(code, err, "/nonexistent/Image");
    }

    [Fact]
    public void DirectoryAsKernelIsAOneLineError()
    {
        var (code, _, err) = Hostvm("run", "--kernel", Path.GetTempPath());
        AssertOneLineError(code, err, "is a directory");
    }

    [Fact]
    public void TruncatedKernelIsAOneLineError()
    {
        byte[] image = File.ReadAllBytes(GuestArtifacts.Guest("Image"));
        string path = TempFile(image[..40]);
        try
        {
            var (code, _, err) = Hostvm("run", "--kernel", path);
            AssertOneLineError(code, err, path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void WrongArchitectureElfIsAOneLineError()
    {
        // The dotnet host itself is an x86-64 (or arm64) ELF: never a RISC-V kernel.
        string hostElf = "/bin/sh";
        var (code, _, err) = Hostvm("run", "--kernel", hostElf);
        AssertOneLineError(code, err, hostElf);
        Assert.Contains("RISC-V", err);
    }

    [Fact]
    public void TruncatedInitrdOrMissingInitrdIsAOneLineError()
    {
        var (code, _, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--initrd", "/nonexistent/initrd");
        AssertOneLineError(code, err, "/nonexistent/initrd");
    }

    [Theory]
    [InlineData("--drive", "file=/nonexistent/disk.img", "/nonexistent/disk.img")]
    [InlineData("--drive", "/some/disk.img", "file=PATH")]
    [InlineData("--drive", "readonly=on", "file=PATH is missing")]
    [InlineData("--drive", "file=/tmp,readonly=maybe", "readonly=maybe")]
    [InlineData("--drive", "file=/tmp,speed=fast", "unknown key 'speed'")]
    [InlineData("--drive", "file=/tmp,bw=1M", "SIZE/TIME")]
    [InlineData("--drive", "file=/tmp,bw=1M/10", "needs a unit")]
    [InlineData("--drive", "file=/tmp,bw-burst=1M", "needs bw=")]
    [InlineData("--net", "bogus", "unknown network 'bogus'")]
    [InlineData("--net", "user,switch=a", "exactly one of")]
    [InlineData("--net", "user,hostfwd=tcp:127.0.0.1:notaport-:80", "hostfwd=")]
    [InlineData("--net", "switch=../etc", "../etc")]
    [InlineData("--net", "user,mac=01:00:00:00:00:01", "multicast")]
    [InlineData("--net", "user,mac=zz", "not a MAC address")]
    [InlineData("--net", "tap=this-name-is-far-too-long-for-linux", "this-name-is-far-too-long-for-linux")]
    [InlineData("--virtio-console", "file=/tmp/x", "socket=PATH")]
    public void BadDeviceOptionIsAOneLineError(string option, string value, string mentions)
    {
        var (code, _, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), option, value);
        AssertOneLineError(code, err, mentions);
    }

    [Fact]
    public void NineDevicesDoNotFitTheEightSlots()
    {
        var args = new List<string> { "run", "--kernel", GuestArtifacts.Guest("Image"), "--rng", "--balloon" };
        for (int i = 0; i < 7; i++)
        {
            args.AddRange(["--net", $"switch=cli-test-{i}"]);
        }

        var (code, _, err) = Hostvm([.. args]);
        AssertOneLineError(code, err, "8 virtio-mmio slots");
    }

    [Fact]
    public void ADiskInUseByAnotherVmIsRefused()
    {
        string image = TempFile(new byte[1 << 20]);
        try
        {
            using var held = HostVM.Storage.RawFileBlockDevice.Open(image, readOnly: false);
            var (code, _, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--drive", $"file={image}");
            AssertOneLineError(code, err, "in use");
        }
        finally
        {
            File.Delete(image);
        }
    }

    [Fact]
    public void MemoryTooSmallForThePayloadIsAOneLineError()
    {
        string initrd = TempFile(new byte[24 * 1024 * 1024]);
        try
        {
            var (code, _, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--initrd", initrd, "--memory", "16M");
            AssertOneLineError(code, err, initrd);
            Assert.Contains("--memory", err);
        }
        finally
        {
            File.Delete(initrd);
        }
    }

    [Fact]
    public void MemoryBelowTheMinimumIsAOneLineError()
    {
        var (code, _, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--memory", "4M");
        AssertOneLineError(code, err, "--memory 4M");
    }

    [Fact]
    public void BadMemorySizeIsAOneLineError()
    {
        var (code, _, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--memory", "lots");
        AssertOneLineError(code, err, "--memory lots");
    }

    [Fact]
    public void HungGuestIsStoppedByTimeoutWithAReport()
    {
        // A program that spins forever: `j .` at the reset address.
        string path = TempFile([0x6f, 0x00, 0x00, 0x00]);
        try
        {
            var (code, _, err) = Hostvm("run", "--firmware", path, "--timeout", "1");
            Assert.Equal(124, code);
            Assert.Contains("did not finish within 1 s", err);
            Assert.Contains("pc 0x0000000080000000", err);
            Assert.Contains("Machine mode", err);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void GuestFailCodeBecomesTheExitCode()
    {
        // li t0, 0x100000; li t1, (7 << 16) | 0x3333; sw t1, 0(t0)  -> exit code 7
        uint[] program =
        [
            0x001002b7, // lui t0, 0x100
            0x00073337, // lui t1, 0x73
            0x33330313, // addi t1, t1, 0x333 (-> 0x73333)
            0x0062a023, // sw t1, 0(t0)
            0x0000006f, // j .
        ];
        string path = TempFile([.. program.SelectMany(BitConverter.GetBytes)]);
        try
        {
            var (code, _, _) = Hostvm("run", "--firmware", path, "--timeout", "30");
            Assert.Equal(7, code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void OnATerminalTheConsoleIsRawAndCtrlAXQuits()
    {
        // A program that prints "R" on the UART, then spins: lui t0,0x10000; li t1,'R'; sb t1,0(t0); j .
        uint[] program = [0x100002b7, 0x05200313, 0x00628023, 0x0000006f];
        string path = TempFile([.. program.SelectMany(BitConverter.GetBytes)]);
        try
        {
            using var terminal = new TerminalRun($"--firmware {path} --timeout 60");
            Assert.True(terminal.WaitFor("R", TimeSpan.FromSeconds(60)), terminal.Output);
            terminal.Type("ab\u0001x"); // typed keys, then Ctrl-A X
            string text = terminal.WaitForExit(TimeSpan.FromSeconds(60));
            Assert.Contains("EXIT=0", text);
            Assert.DoesNotContain("ab", text); // raw mode: nothing is echoed locally
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void OnATerminalCtrlAPPressesThePowerButtonAndTheGuestShutsDown()
    {
        using var terminal = new TerminalRun(
            $"--kernel {GuestArtifacts.Guest("Image")} --initrd {GuestArtifacts.Guest("initramfs.cpio.gz")} --firmware {GuestArtifacts.Guest("fw_jump.bin")} "
            + "--power-button --stats --timeout 240 --append 'console=ttyS0 quiet hostvm.mode=shell'");
        Assert.True(terminal.WaitFor("HOSTVM-SHELL-READY", TimeSpan.FromSeconds(180)), terminal.Output);
        terminal.Type("\u0001p"); // Ctrl-A P
        if (!terminal.WaitFor("HOSTVM-POWER-BUTTON", TimeSpan.FromSeconds(60)))
        {
            // Say why: what the guest and (--stats, after Ctrl-A X) the device saw.
            terminal.Type(PowerButtonTests.GuestDiagnostics + "\n");
            Thread.Sleep(5000);
            terminal.Type("\u0001x");
            Assert.Fail($"no HOSTVM-POWER-BUTTON within 60 s of Ctrl-A P\n{terminal.WaitForExit(TimeSpan.FromSeconds(60))}");
        }

        string text = terminal.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.Contains("hostvm: power button pressed", text);
        Assert.Contains("HOSTVM-POWER-BUTTON", text);
        Assert.Contains("EXIT=0", text); // a clean power-off, not the --timeout
    }

    [Fact]
    public void LinuxBootsUnderTheCliAndExitsZero()
    {
        var (code, stdout, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--initrd", GuestArtifacts.Guest("initramfs.cpio.gz"),
            "--firmware", GuestArtifacts.Guest("fw_jump.bin"), "--append", "console=ttyS0", "--timeout", "240");
        Assert.True(code == 0, $"exit {code}\n{err}\n{stdout}");
        Assert.Contains("HOSTVM-GUEST-READY", stdout);
    }

    [Fact]
    public void StatsReportWhatEachDeviceCarried()
    {
        string image = TempFile(new byte[4 << 20]);
        try
        {
            // The guest reads its whole disk and some entropy; --stats must account for both.
            var (code, stdout, err) = Hostvm("run", "--kernel", GuestArtifacts.Guest("Image"), "--initrd", GuestArtifacts.Guest("initramfs.cpio.gz"),
                "--firmware", GuestArtifacts.Guest("fw_jump.bin"), "--timeout", "240", "--stats", "--drive", $"file={image},id=statsdisk", "--rng", "--power-button",
                "--append", "console=ttyS0 quiet hostvm.mode=iobench hostvm.diskmb=0");
            Assert.True(code == 0, $"exit {code}\n{err}\n{stdout}");
            var disk = System.Text.RegularExpressions.Regex.Match(err, @"virtio0 disk statsdisk: (\d+) reads \((\d+) bytes\)");
            Assert.True(disk.Success, err);
            Assert.True(long.Parse(disk.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, err);
            Assert.Matches(@"virtio1 rng: [1-9]\d* bytes", err);
            Assert.Contains("virtio2 input: 0 power presses (0 events delivered, 0 pending)", err);
        }
        finally
        {
            File.Delete(image);
        }
    }
}
