import ApplianceProvisioning
import Testing

/// The provisioning steps as a value: order, adoption, and what a failure removes.
@Suite struct ProvisionPlanTests {
    @Test func aNewApplianceGoesThroughEveryStep() {
        var plan = ProvisionPlan()
        var seen: [ProvisionPlan.Step] = [plan.step]
        while plan.step != .done {
            plan.succeeded(existing: false)
            seen.append(plan.step)
        }
        #expect(
            seen == [.connect, .inspect, .image, .createDisk, .defineDomain, .start, .waitReady, .firstLogin, .done]
        )
        #expect(!plan.adopted)
    }

    @Test func adoptingARunningApplianceOnlyWaitsAndLogsIn() {
        var plan = ProvisionPlan()
        plan.succeeded()
        plan.succeeded(existing: true, running: true)
        #expect(plan.step == .waitReady)
        #expect(plan.adopted)
        plan.succeeded()
        plan.succeeded()
        #expect(plan.step == .done)
    }

    @Test func adoptingAStoppedApplianceStartsIt() {
        var plan = ProvisionPlan()
        plan.succeeded()
        plan.succeeded(existing: true, running: false)
        #expect(plan.step == .start)
    }

    @Test func aFailureRemovesWhatTheRunCreatedNewestFirst() {
        var plan = ProvisionPlan()
        plan.succeeded()
        plan.succeeded()
        plan.succeeded()
        plan.record(.volume("box-disk.qcow2"))
        plan.succeeded()
        plan.record(.domain("box"))
        plan.succeeded()
        plan.record(.running("box"))
        plan.succeeded()
        #expect(plan.step == .waitReady)
        let undo = plan.failed(keepFailed: false)
        #expect(undo == [.running("box"), .domain("box"), .volume("box-disk.qcow2")])
        #expect(plan.step == .failed)
    }

    @Test func keepFailedRemovesNothing() {
        var plan = ProvisionPlan()
        plan.record(.volume("box-disk.qcow2"))
        #expect(plan.failed(keepFailed: true).isEmpty)
        #expect(plan.created == [.volume("box-disk.qcow2")])
    }

    @Test func anAdoptedApplianceIsNeverRemoved() {
        var plan = ProvisionPlan()
        plan.succeeded()
        plan.succeeded(existing: true, running: false)
        plan.succeeded()
        #expect(plan.failed(keepFailed: false).isEmpty)
    }

    @Test func domainXMLIsReadBack() {
        let xml = """
            <domain type='qemu'><metadata><appliance:appliance \
            xmlns:appliance="https://appliance-tools.example/schemas/appliance/1">\
            <appliance:id>3f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f</appliance:id></appliance:appliance></metadata>\
            <qemu:arg value='user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40123-:443'/></domain>
            """
        #expect(Provisioner.applianceId(inDomainXML: xml) == "3f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f")
        #expect(Provisioner.forwardedPort(inDomainXML: xml) == 40123)
        #expect(Provisioner.applianceId(inDomainXML: "<domain type='kvm'><name>other</name></domain>") == nil)
    }
}
