using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

public class PowerDeviceTests
{
    private readonly List<PowerRequest> _requests = [];
    private readonly PowerDevice _device;

    public PowerDeviceTests()
    {
        _device = new PowerDevice(_requests.Add);
    }

    [Theory]
    [InlineData(0x5555u, PowerAction.PowerOff, 0)]
    [InlineData(0x7777u, PowerAction.Reboot, 0)]
    [InlineData(0x3333u, PowerAction.Fail, 0)]
    [InlineData((42u << 16) | 0x3333u, PowerAction.Fail, 42)]
    [InlineData((0xFFFFu << 16) | 0x3333u, PowerAction.Fail, 0xFFFF)]
    public void Finisher_codes(uint value, PowerAction action, int exitCode)
    {
        _device.Write(PowerDevice.FinisherRegister, 4, value);

        Assert.Equal([new PowerRequest(action, exitCode)], _requests);
    }

    [Theory]
    [InlineData(0x0u)]
    [InlineData(0x1234u)]
    [InlineData(0x5556u)]
    [InlineData(0x4444u)]
    public void Other_values_are_ignored(uint value)
    {
        _device.Write(PowerDevice.FinisherRegister, 4, value);
        Assert.Empty(_requests);
    }

    [Fact]
    public void Other_offsets_and_byte_writes_are_ignored_and_reads_are_zero()
    {
        _device.Write(4, 4, 0x5555);
        _device.Write(PowerDevice.FinisherRegister, 1, 0x55);

        Assert.Empty(_requests);
        Assert.Equal(0UL, _device.Read(0, 4));
    }

    [Fact]
    public void A_16_bit_write_powers_off_as_OpenSBI_does_it()
    {
        _device.Write(PowerDevice.FinisherRegister, 2, 0x5555);

        Assert.Equal([new PowerRequest(PowerAction.PowerOff, 0)], _requests);
    }
}
