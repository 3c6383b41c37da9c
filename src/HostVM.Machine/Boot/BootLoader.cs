using System.Buffers.Binary;
using HostVM.Machine.Devices;

namespace HostVM.Machine.Boot;

/// <summary>
/// Places firmware, kernel, initrd and device tree in RAM the way QEMU's `virt` does, and sets the
/// harts' starting registers: (a) firmware + kernel, (b) kernel alone on the built-in SBI, (c) a
/// bare-metal program alone (with HTIF when it has a <c>tohost</c> symbol).
/// </summary>
public static class BootLoader
{
    /// <summary>The ISA string the device tree advertises: exactly what the harts implement.</summary>
    public const string IsaString = "rv64imafdc_zicsr_zifencei_zicntr";

    public const ulong KernelAlignment = 2 * MachineConfiguration.MiB;
    public const ulong FwDynamicMagic = 0x4942_534F;
    public const ulong FwDynamicVersion = 2;

    public static BootSummary Load(VirtualMachine vm, MachineConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(config);
        var ram = vm.Ram;
        ulong ramBase = ram.BaseAddress;
        var payloads = new List<BootPayload>();

        if (config.Firmware is null && config.Kernel is null)
        {
            throw new BootImageException("nothing to boot: give --kernel (Linux) or --firmware (OpenSBI or a bare-metal program).");
        }

        if (config.Initrd is not null && config.Kernel is null)
        {
            throw new BootImageException($"{config.Initrd.Name}: an initrd needs a kernel (--kernel).");
        }

        // Firmware (or a bare-metal program) at the start of RAM, or where its ELF says.
        BootPayload? firmware = null;
        ElfImage? firmwareElf = null;
        if (config.Firmware is { } fw)
        {
            if (PayloadLoader.Detect(fw.Data.Span) == PayloadKind.Elf)
            {
                firmwareElf = ElfImage.Parse(fw.Data, fw.Name);
                firmware = firmwareElf.ToPayload();
            }
            else
            {
                firmware = BootPayload.Raw(fw.Name, fw.Data, ramBase);
            }

            payloads.Add(firmware);
        }

        // Kernel: an ELF at its own addresses, or an Image at the first 2 MiB boundary after the firmware.
        BootPayload? kernel = null;
        if (config.Kernel is { } k)
        {
            ulong after = Math.Max(firmware?.End ?? ramBase, ramBase + KernelAlignment);
            kernel = PayloadLoader.Detect(k.Data.Span) switch
            {
                PayloadKind.Elf => ElfImage.Parse(k.Data, k.Name).ToPayload(),
                _ => LinuxImage.Parse(k.Data, k.Name).ToPayload(AlignUp(after, KernelAlignment)),
            };
            payloads.Add(kernel);
        }

        // Initrd: QEMU's rule, half of RAM or 128 MiB past the kernel, whichever is less.
        ulong? initrdStart = null, initrdEnd = null;
        if (config.Initrd is { } initrd && kernel is not null)
        {
            ulong start = AlignUp(kernel.Entry + Math.Min(ram.Size / 2, 128 * MachineConfiguration.MiB), 0x1000);
            start = Math.Max(start, AlignUp(kernel.End, 0x1000));
            payloads.Add(BootPayload.Raw(initrd.Name, initrd.Data, start));
            initrdStart = start;
            initrdEnd = start + (ulong)initrd.Data.Length;
        }

        // Device tree near the top of RAM (below 3 GiB), 2 MiB aligned, as QEMU does.
        var board = new VirtBoardDescription(config.HartCount, ramBase, ram.Size, IsaString, MmuTypeFor(config.MaxSatpMode))
        {
            BootArgs = config.KernelCommandLine,
            InitrdStart = initrdStart,
            InitrdEnd = initrdEnd,
            VirtioSlots = vm.VirtioSlots,
        };
        byte[] dtb = VirtDeviceTree.Build(board);
        ulong top = Math.Min(ram.EndAddress, ramBase + (3072 * MachineConfiguration.MiB));
        ulong dtbAddress = (top - (ulong)dtb.Length) & ~(KernelAlignment - 1);
        if (dtbAddress < ramBase + KernelAlignment)
        {
            dtbAddress = (top - (ulong)dtb.Length) & ~0xFFFUL; // small RAM: just below the top
        }

        payloads.Add(BootPayload.Raw("device tree", dtb, dtbAddress));

        // fw_dynamic's info block, just below the device tree (fw_jump ignores a2).
        ulong infoAddress = dtbAddress - 0x40;
        if (firmware is not null && kernel is not null)
        {
            var info = new byte[48];
            BinaryPrimitives.WriteUInt64LittleEndian(info, FwDynamicMagic);
            BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(8), FwDynamicVersion);
            BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(16), kernel.Entry);
            BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(24), 1); // next mode: S
            BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(32), 0); // options
            BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(40), ulong.MaxValue); // boot hart: any
            payloads.Add(BootPayload.Raw("fw_dynamic info", info, infoAddress));
        }

        BootLayout.Validate(payloads, ramBase, ram.Size);
        foreach (var p in payloads)
        {
            p.CopyTo(ram);
            foreach (var s in p.Segments)
            {
                vm.Code.InvalidateRange(s.Address, s.MemorySize);
            }
        }

        ulong? kernelAddress = kernel?.LoadAddress;
        if (firmware is not null)
        {
            ulong? toHost = null;
            if (kernel is null && firmwareElf is not null && firmwareElf.TryGetSymbol("tohost", out ulong toHostAddress))
            {
                ulong? fromHost = firmwareElf.TryGetSymbol("fromhost", out ulong f) ? f : null;
                var htif = new HtifDevice(toHostAddress, fromHost, vm.OnTestExit, vm.ConsoleOutput);
                vm.Bus.Map(htif.WindowBase, htif.WindowSize, htif);
                toHost = toHostAddress;
            }

            foreach (var hart in vm.Harts)
            {
                hart.Reset(firmware.Entry);
                hart.SetX(10, (ulong)hart.HartId);
                hart.SetX(11, dtbAddress);
                hart.SetX(12, infoAddress);
            }

            return new BootSummary(firmware.Entry, dtbAddress, kernelAddress, initrdStart, initrdEnd, false, toHost);
        }

        var sbi = new BuiltinSbi(vm.Harts, vm.Ram, vm.ConsoleOutput, () => -1, vm.OnPowerRequest);
        sbi.PrepareHarts(0, kernel!.Entry, dtbAddress);
        return new BootSummary(kernel.Entry, dtbAddress, kernelAddress, initrdStart, initrdEnd, true, null);
    }

    private static string MmuTypeFor(int maxSatpMode) => maxSatpMode switch
    {
        8 => "riscv,sv39",
        9 => "riscv,sv48",
        _ => "riscv,sv57",
    };

    private static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);
}
