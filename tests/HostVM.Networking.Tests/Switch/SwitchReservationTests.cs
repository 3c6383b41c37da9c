using System.Net;
using HostVM.Networking.Switch;
using HostVM.Networking.Tests.UserNet;

namespace HostVM.Networking.Tests.Switch;

public sealed class SwitchReservationTests : IDisposable
{
    private static readonly MacAddress Guest = MacAddress.Parse("52:54:00:00:00:0a");
    private readonly SwitchReservation _reservation = new(Packets.GatewayMac, [IPAddress.Parse("10.0.2.2"), IPAddress.Parse("10.0.2.3")]);
    private readonly string _directory = Directory.CreateTempSubdirectory("hostvm-reservation-").FullName;

    [Fact]
    public void OnlyTheOwnerMaySpeakForAReservedAddressInArp()
    {
        Assert.False(_reservation.IsFalseClaim(Packets.ArpRequest(Packets.Gateway, Packets.Guest, Packets.GatewayMac)));
        Assert.False(_reservation.IsFalseClaim(Packets.ArpRequest(Packets.Guest, Packets.Gateway, Guest))); // asking for it is fine
        Assert.True(_reservation.IsFalseClaim(Packets.ArpRequest(Packets.Gateway, Packets.Guest, Guest)));
        Assert.True(_reservation.IsFalseClaim(Packets.ArpRequest(Packets.Dns, Packets.Dns, Guest)));

        // The owner's MAC inside the ARP from another Ethernet source is still someone else speaking.
        byte[] borrowed = Packets.ArpRequest(Packets.Gateway, Packets.Guest, Packets.GatewayMac);
        Guest.CopyTo(borrowed.AsSpan(6));
        Assert.True(_reservation.IsFalseClaim(borrowed));

        // Not IPv4 over Ethernet: no neighbour's IPv4 stack reads it as a claim.
        byte[] other = Packets.ArpRequest(Packets.Gateway, Packets.Guest, Guest);
        other[14 + 5] = 16;
        Assert.False(_reservation.IsFalseClaim(other));
        Assert.False(_reservation.IsFalseClaim(Packets.ArpRequest(Packets.Gateway, Packets.Guest, Guest).AsSpan(0, 40)));
    }

    [Fact]
    public void AReservationReadsBackFromTheSwitchDirectoryAndNoneIsNull()
    {
        Assert.Null(SwitchReservation.ReadFrom(_directory));
        _reservation.WriteTo(_directory);
        var read = SwitchReservation.ReadFrom(_directory)!;
        Assert.Equal(Packets.GatewayMac, read.Owner);
        Assert.Equal(_reservation.Addresses, read.Addresses);
        File.WriteAllText(Path.Combine(_directory, SwitchReservation.FileName), "garbage 10.0.2.2\n");
        Assert.Null(SwitchReservation.ReadFrom(_directory));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
