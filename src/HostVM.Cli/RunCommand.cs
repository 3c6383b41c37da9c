using System.CommandLine;
using System.Diagnostics;
using HostVM.Machine;
using HostVM.Machine.Boot;
using HostVM.Machine.Virtio;
using HostVM.Vmm;

namespace HostVM.Cli;

/// <summary>`hostvm run`: boots one VM in this process with the terminal as its serial console.</summary>
public static class RunCommand
{
    public const int ExitBadInput = 2;
    public const int ExitGuestError = 3;
    public const int ExitTimeout = 124;
    private const byte CtrlA = 0x01;

    public static Command Create()
    {
        var kernel = new Option<string?>("--kernel") { Description = "Linux kernel: a RISC-V Image or an ELF." };
        var initrd = new Option<string?>("--initrd") { Description = "Initial RAM disk (cpio archive, optionally compressed)." };
        var append = new Option<string?>("--append") { Description = "Kernel command line." };
        var firmware = new Option<string?>("--firmware")
        {
            Description = "M-mode firmware (OpenSBI fw_jump.bin / fw_dynamic.bin) or, without --kernel, a bare-metal program (ELF or raw). Without it, HostVM's built-in SBI boots the kernel.",
        };
        var memory = new Option<string>("--memory", "-m") { Description = "Guest RAM, e.g. 256M or 1G (a bare number is MiB).", DefaultValueFactory = _ => "256M" };
        var cpus = new Option<int>("--cpus", "--smp") { Description = "Number of harts (1-8).", DefaultValueFactory = _ => 1 };
        var cpuCap = new Option<int?>("--cpu-cap")
        {
            Description = "The most host CPU each hart may use, in percent of one host core (1-100); a hart asleep in WFI uses none.",
        };
        var timeout = new Option<double?>("--timeout") { Description = "Stop the guest after this many seconds and report where it was." };
        var stats = new Option<bool>("--stats") { Description = "Print run time, guest instructions per second and the harts' host CPU use to stderr at exit." };
        var drives = new Option<string[]>("--drive")
        {
            Description = "A virtio-blk disk: file=PATH (or nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH)[,format=raw|qcow2][,readonly=on][,id=SERIAL][,bw=SIZE/TIME][,ops=N/TIME][,bw-burst=SIZE][,ops-burst=N]. Repeatable.",
            AllowMultipleArgumentsPerToken = false,
        };
        var nets = new Option<string[]>("--net")
        {
            Description = "A virtio-net NIC: user[,hostfwd=tcp:HOSTADDR:PORT-:GUESTPORT]... | switch=NAME | tap=IFNAME; with [,mac=52:54:00:..] and limits [rx-|tx-]bw=SIZE/TIME, [rx-|tx-]ops=N/TIME. Repeatable.",
        };
        var rng = new Option<bool>("--rng") { Description = "A virtio-rng entropy device fed by the host's CSPRNG." };
        var balloon = new Option<bool>("--balloon") { Description = "A virtio-balloon device (statistics, deflate on OOM)." };
        var vconsole = new Option<string?>("--virtio-console")
        {
            Description = "A virtio console (/dev/hvc1 in the guest) on a Unix socket: socket=PATH (connect with e.g. socat - UNIX-CONNECT:PATH).",
        };
        var powerButton = new Option<bool>("--power-button")
        {
            Description = "A virtio-input power button: Ctrl-A P presses it (a guest running acpid powers off cleanly).",
        };
        var transport = new Option<string>("--virtio-transport")
        {
            Description = "virtio-mmio version: modern (2) or legacy (1, QEMU 7.2's default).",
            DefaultValueFactory = _ => "modern",
        };
        transport.AcceptOnlyFromAmong("modern", "legacy");

        var command = new Command("run", "Boot one virtual machine in this process; the terminal is its serial console (Ctrl-A X quits).")
        {
            kernel, initrd, append, firmware, memory, cpus, cpuCap, timeout, stats, drives, nets, rng, balloon, vconsole, powerButton, transport,
        };
        command.SetAction(parse => Run(new RunOptions
        {
            Kernel = parse.GetValue(kernel),
            Initrd = parse.GetValue(initrd),
            Append = parse.GetValue(append),
            Firmware = parse.GetValue(firmware),
            Memory = parse.GetValue(memory)!,
            Cpus = parse.GetValue(cpus),
            CpuCap = parse.GetValue(cpuCap),
            TimeoutSeconds = parse.GetValue(timeout),
            Stats = parse.GetValue(stats),
            Drives = parse.GetValue(drives) ?? [],
            Nets = parse.GetValue(nets) ?? [],
            Rng = parse.GetValue(rng),
            Balloon = parse.GetValue(balloon),
            VirtioConsole = parse.GetValue(vconsole),
            PowerButton = parse.GetValue(powerButton),
            LegacyVirtio = parse.GetValue(transport) == "legacy",
        }));
        return command;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"hostvm: {message}");
        return ExitBadInput;
    }

    public static int Run(RunOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string? kernelPath = options.Kernel, initrdPath = options.Initrd, append = options.Append, firmwarePath = options.Firmware;
        string memoryText = options.Memory;
        int cpus = options.Cpus;
        double? timeoutSeconds = options.TimeoutSeconds;
        bool stats = options.Stats;
        if (!SizeParser.TryParse(memoryText, out ulong memory) || memory % 4096 != 0)
        {
            return Fail($"--memory {memoryText}: not a size; write e.g. 256M or 1G.");
        }

        if (memory < 16 * MachineConfiguration.MiB)
        {
            return Fail($"--memory {memoryText}: too small; a machine needs at least 16M.");
        }

        if (memory > 64UL * 1024 * MachineConfiguration.MiB)
        {
            return Fail($"--memory {memoryText}: too large; at most 64G.");
        }

        if (cpus < 1 || cpus > MachineConfiguration.MaxHarts)
        {
            return Fail($"--cpus {cpus}: a machine has 1 to {MachineConfiguration.MaxHarts} harts.");
        }

        if (!MachineConfiguration.IsValidCpuCap(options.CpuCap))
        {
            return Fail($"--cpu-cap {options.CpuCap}: a percentage of one host core per hart, 1 to 100.");
        }

        if (timeoutSeconds is <= 0)
        {
            return Fail($"--timeout {timeoutSeconds}: must be a positive number of seconds.");
        }

        if (memory % MachineConfiguration.MiB != 0)
        {
            return Fail($"--memory {memoryText}: a whole number of MiB, e.g. 256M or 1G.");
        }

        using var sink = new ConsoleSink(Console.OpenStandardOutput());
        SerialSocket? consoleSocket = null;
        using var consoleSocketScope = new DisposeLater(() => consoleSocket?.Dispose());
        VirtualMachine vm;
        try
        {
            var description = RunDescription.From(options, (long)(memory / MachineConfiguration.MiB));
            var wiring = new MachineWiring(sink.Write);
            if (options.VirtioConsole is { } vc)
            {
                var list = KeyValueList.Parse("--virtio-console", vc);
                string path = list.Get("socket") ?? throw new DeviceOptionException($"--virtio-console {vc}: write socket=PATH.");
                list.RejectUnknown("socket");
                consoleSocket = SerialSocket.Listen(path, "--virtio-console socket=");
                wiring = wiring with
                {
                    VirtioConsoleOutput = data => consoleSocket.Write(data.Span),
                    DeviceMade = device =>
                    {
                        if (device is VirtioConsole console)
                        {
                            consoleSocket.Start(data => console.SendInput(data.Span));
                        }
                    },
                };
            }

            var built = MachineBuilder.Boot(description, wiring);
            vm = built.Machine;
            var notes = built.Notes.ToList();
            if (options.PowerButton && options.LegacyVirtio)
            {
                notes.Add("--power-button: Linux's virtio-input driver wants the modern transport; under --virtio-transport legacy it ignores the button.");
            }

            foreach (var note in notes)
            {
                Console.Error.WriteLine($"hostvm: {note}");
            }
        }
        catch (DeviceOptionException e)
        {
            return Fail(e.Message);
        }
        catch (VmmFault e)
        {
            return Fail(e.Message);
        }

        using (vm)
        using (var terminal = TerminalMode.EnterRaw())
        {
            var watch = Stopwatch.StartNew();
            vm.Start();
            using var trimmer = new IdleCodeTrimmer(vm, IdleCodeTrimmer.DefaultInterval);
            StartInputPump(vm);
            var exit = timeoutSeconds is { } t ? vm.WaitForExit(TimeSpan.FromSeconds(t)) : vm.WaitForExit();
            if (exit is null)
            {
                vm.Stop("timeout");
                sink.Flush();
                terminal.Dispose();
                Console.Error.WriteLine($"\r\nhostvm: the guest did not finish within {timeoutSeconds} s; stopped it.");
                foreach (var line in vm.DescribeHarts().Concat(vm.DescribeDevices()))
                {
                    Console.Error.WriteLine($"hostvm:   {line}");
                }

                return ExitTimeout;
            }

            watch.Stop();
            sink.Flush();
            terminal.Dispose();
            if (stats)
            {
                double seconds = watch.Elapsed.TotalSeconds;
                ulong instructions = vm.InstructionsRetired;
                Console.Error.WriteLine(
                    $"hostvm: {exit.Message}; {seconds:F3} s, {instructions} instructions, {instructions / seconds / 1e6:F1} MIPS");
                Console.Error.WriteLine(
                    $"hostvm:   harts: {vm.CpuTime.TotalSeconds:F3} s of host CPU ({vm.CpuTime / watch.Elapsed / cpus * 100:F1}% of a core each), "
                    + $"{vm.CpuThrottledTime.TotalSeconds:F3} s held back by the CPU cap ({(vm.CpuCapPercent is { } c ? $"{c}%" : "none")})");
                foreach (var line in vm.DescribeDeviceUsage())
                {
                    Console.Error.WriteLine($"hostvm:   {line}");
                }
            }

            switch (exit.Reason)
            {
                case MachineExitReason.GuestError:
                    Console.Error.WriteLine($"\r\nhostvm: {exit.Message}");
                    foreach (var line in vm.DescribeHarts())
                    {
                        Console.Error.WriteLine($"hostvm:   {line}");
                    }

                    return ExitGuestError;
                case MachineExitReason.Fail:
                    Console.Error.WriteLine($"hostvm: {exit.Message}");
                    return exit.ExitCode;
                case MachineExitReason.Stopped:
                    return 0; // Ctrl-A X, as QEMU: the user asked for it
                case MachineExitReason.Reboot:
                    Console.Error.WriteLine("hostvm: the guest asked for a reboot; hostvm run exits instead (like QEMU's -no-reboot).");
                    return 0;
                default:
                    return exit.ExitCode;
            }
        }
    }

    /// <summary>
    /// Copies stdin to the guest's UART; Ctrl-A X quits, Ctrl-A P presses the power button, Ctrl-A Ctrl-A
    /// sends one Ctrl-A (as QEMU).
    /// </summary>
    private static void StartInputPump(VirtualMachine vm)
    {
        var thread = new Thread(() =>
        {
            // fd 0 as a plain file: Console.OpenStandardInput() on a terminal goes through .NET's
            // line editor (it echoes and buffers until Enter), which a raw console must bypass.
            FileStream input;
            try
            {
                input = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
                return; // no usable standard input: the guest runs without a keyboard
            }

            using var inputStream = input;
            var buffer = new byte[256];
            bool escape = false;
            var pending = new List<byte>();
            while (vm.Exit is null)
            {
                int n;
                try
                {
                    n = input.Read(buffer, 0, buffer.Length);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException or NotSupportedException)
                {
                    return;
                }

                if (n <= 0)
                {
                    return; // end of input: the guest keeps running without a keyboard
                }

                pending.Clear();
                for (int i = 0; i < n; i++)
                {
                    byte b = buffer[i];
                    if (escape)
                    {
                        escape = false;
                        if (b is (byte)'x' or (byte)'X')
                        {
                            vm.Stop("quit from the console (Ctrl-A X)");
                            return;
                        }

                        if (b is (byte)'p' or (byte)'P')
                        {
                            PressPowerButton(vm);
                            continue;
                        }

                        pending.Add(b == CtrlA ? CtrlA : b);
                        continue;
                    }

                    if (b == CtrlA && !Console.IsInputRedirected)
                    {
                        escape = true;
                        continue;
                    }

                    pending.Add(b);
                }

                var span = pending.ToArray().AsSpan();
                while (span.Length > 0 && vm.Exit is null)
                {
                    int taken = vm.SendConsoleInput(span);
                    span = span[taken..];
                    if (span.Length > 0)
                    {
                        Thread.Sleep(5); // the UART's FIFO is full: wait for the guest to read
                    }
                }
            }
        })
        {
            IsBackground = true,
            Name = "console-input",
        };
        thread.Start();
    }

    /// <summary>Ctrl-A P: presses the virtio-input power button and says so on stderr (the terminal is raw).</summary>
    private static void PressPowerButton(VirtualMachine vm)
    {
        string note = vm.Device<VirtioInput>() switch
        {
            null => "no power button: start hostvm run with --power-button",
            var button when button.PressPowerButton() => "power button pressed",
            _ => $"power button: {VirtioInput.MaxPendingPresses} presses already wait for the guest to take them",
        };
        Console.Error.Write($"\r\nhostvm: {note}\r\n");
    }
}
